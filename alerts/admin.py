"""Alerts in admin: channels are edited here; alerts and their deliveries are
a read-only record of what was sent, when, and what went wrong.

A webhook channel's signing secret is shown once, in the message after the
channel is saved as a webhook for the first time or after "Rotate the signing
secret", and never again. Lists name a webhook by scheme://host[:port] only."""

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from alerts.channels import rotate_secret
from alerts.models import Alert, AlertChannel, ChannelSecret, Delivery, ScheduleAlertRule
from audit.admin import AuditedActionsMixin, AuditSectionMixin
from scanner_project.admin_readonly import ReadOnlyAdmin


@admin.register(AlertChannel)
class AlertChannelAdmin(AuditedActionsMixin, AuditSectionMixin, admin.ModelAdmin):
    list_display = ("kind", "where", "enabled", "from_environment", "created_at")
    list_filter = ("kind", "enabled", "from_environment")
    readonly_fields = ("from_environment", "created_at")
    actions = ("rotate_signing_secret",)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Who may only look sees where alerts go, not a secret in the URL's path.
            return [("where" if name == "target" else name) for name in fields]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "where")

    @admin.display(description="Target", ordering="target")
    def where(self, obj):
        return obj.display_target

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.kind == AlertChannel.Kind.WEBHOOK and not ChannelSecret.objects.filter(channel=obj).exists():
            _show_once(request, obj, rotate_secret(channel=obj))

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_signing_secret(self, request, queryset):
        for channel in queryset:
            if channel.kind != AlertChannel.Kind.WEBHOOK:
                self.message_user(request, f"{channel}: email is not signed", messages.WARNING)
                continue
            _show_once(request, channel, rotate_secret(channel=channel))


def _show_once(request, channel: AlertChannel, secret: str) -> None:
    messages.success(request, format_html(
        "Signing secret of {}: <code class=\"signing-secret\">{}</code>. Copy it to the receiver now: it is not "
        "shown again (rotate it to get a new one). Deliveries carry webhook-id, webhook-timestamp and "
        "webhook-signature (Standard Webhooks).", channel, secret))


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("channel", "status", "attempts", "sent_at", "next_attempt_at", "last_error", "summary")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "kind", "title", "delivered")
    list_filter = ("event", "kind", ("created_at", admin.DateFieldListFilter))
    search_fields = ("title", "=subject")
    readonly_fields = ("created_at", "event", "kind", "subject", "transition", "title", "text", "details",
                       "instance_id")
    inlines = (DeliveryInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("deliveries")

    @admin.display(description="Deliveries")
    def delivered(self, obj):
        rows = [(d.status, d.attempts) for d in obj.deliveries.all()]
        if not rows:
            return "no channel configured"
        return format_html_join(", ", "{} ({} tries)", rows)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "what", "channel", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status", "channel")
    list_select_related = ("alert", "channel")
    readonly_fields = ("alert", "channel", "status", "summary", "summary_text", "attempts", "next_attempt_at",
                       "last_error", "sent_at", "created_at", "claimed_by", "claimed_until")

    @admin.display(description="Alert")
    def what(self, obj):
        return obj.alert.title if obj.alert_id else f"summary: {obj.summary_text.partition(chr(10))[0]}"


@admin.register(ScheduleAlertRule)
class ScheduleAlertRuleAdmin(admin.ModelAdmin):
    """A schedule's own threshold; schedules without one use ALERT_AFTER_FAILURES."""

    list_display = ("schedule", "after_failures")
    search_fields = ("schedule__domain", "schedule__domain_config_id")
    raw_id_fields = ("schedule",)
