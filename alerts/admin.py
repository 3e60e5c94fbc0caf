"""Alerts in admin: channels are edited here; alerts and their deliveries are
a read-only record of what was sent, when, and what went wrong."""

from django.contrib import admin
from django.utils.html import format_html_join

from audit.admin import AuditedActionsMixin, AuditSectionMixin
from scanner_project.admin_readonly import ReadOnlyAdmin

from .models import Alert, AlertChannel, Delivery, ScheduleAlertRule


@admin.register(AlertChannel)
class AlertChannelAdmin(AuditedActionsMixin, AuditSectionMixin, admin.ModelAdmin):
    list_display = ("kind", "target", "enabled", "from_environment", "created_at")
    list_filter = ("kind", "enabled", "from_environment")
    readonly_fields = ("from_environment", "created_at")


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
                       "last_error", "sent_at", "created_at")

    @admin.display(description="Alert")
    def what(self, obj):
        return obj.alert.title if obj.alert_id else f"summary: {obj.summary_text.partition(chr(10))[0]}"


@admin.register(ScheduleAlertRule)
class ScheduleAlertRuleAdmin(admin.ModelAdmin):
    """A schedule's own threshold; schedules without one use ALERT_AFTER_FAILURES."""

    list_display = ("schedule", "after_failures")
    search_fields = ("schedule__domain", "schedule__domain_config_id")
    raw_id_fields = ("schedule",)
