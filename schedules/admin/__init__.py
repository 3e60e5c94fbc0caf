import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html_join

from audit.admin import AuditedActionsMixin, AuditSectionMixin
from history.queue import queue_manual_run
from scanner_project.redaction import shorten
from schedules import hooks, shards
from schedules.admin.history import ScheduleHistoryMixin
from schedules.admin.sync import sync_view
from schedules.instances import live_instances
from schedules.models import ScanProfile, Schedule, SchedulerInstance
from schedules.notify import publish_schedule_changes
from schedules.timing.triggers import TimeConfigError, skipped_months_warning

UPCOMING_COUNT = 5


class ValidSelectionMixin:
    """An action posted with a selected id that is not a UUID is refused with a
    message; Django would otherwise fail with a server error while filtering."""

    def response_action(self, request, queryset):
        for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
            try:
                uuid.UUID(value)
            except ValueError:
                self.message_user(request, f"{ACTION_CHECKBOX_NAME}: {value!r} is not an id; nothing was changed.",
                                  messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class HookedExtensionsMixin:
    """The list actions and page sections the apps built on schedules add
    (schedules.hooks.register_schedule_admin: pauses, reruns), after the
    admin's own ``own_actions``. Read at each request, so it does not matter
    whether their admin modules load before or after this one."""

    own_actions: tuple = ()

    @property
    def actions(self) -> tuple:
        return (*self.own_actions, *(action for ext in hooks.schedule_admin_extensions() for action in ext.actions))

    def _sections_shown(self, request, obj) -> list[hooks.AdminSection]:
        # A section shows another model's data: only to those who may view it.
        if obj is None or obj.pk is None:
            return []
        return [section for ext in hooks.schedule_admin_extensions() for section in ext.sections
                if request.user.has_perm(section.permission)]

    def get_readonly_fields(self, request, obj=None):
        shown = self._sections_shown(request, obj)
        return (*super().get_readonly_fields(request, obj), *(f for section in shown for f in section.fields))

    def get_fieldsets(self, request, obj=None):
        fieldsets = tuple(super().get_fieldsets(request, obj))
        for section in self._sections_shown(request, obj):
            entry = (section.title, {"fields": section.fields})
            fieldsets = (*fieldsets[:1], entry, *fieldsets[1:]) if section.first else (*fieldsets, entry)
        return fieldsets


def _json_errors(*names: str) -> dict[str, dict[str, str]]:
    # Django's "Enter a valid JSON." names neither the field nor the value.
    return {name: {"invalid": f"{name}: %(value)s is not valid JSON"} for name in names}


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field, with a value too deep to parse (RecursionError)
    refused like any invalid JSON, and the value shortened in the message."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid",
                                        params={"value": f"{shorten(str(value), 60)} (nested too deeply)"}) from None
        except forms.ValidationError as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid",
                                        params={"value": shorten(str(value), 200)}) from exc

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = "__all__"
        error_messages = _json_errors("time_config", "scan_settings")
        field_classes = {"time_config": BoundedJSONField, "scan_settings": BoundedJSONField}
        help_texts = {"domain_config_id": "The upstream API's id for this domain. For a schedule made by hand, "
                                          "keep the generated manual-… id: the API import never touches it."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding and "domain_config_id" in self.fields:
            self.fields["domain_config_id"].initial = f"manual-{uuid.uuid4().hex[:12]}"

    def add_error(self, field, error):
        # A field that could not be parsed (invalid JSON) keeps its model
        # default, and the model's own check of the schedule would then add a
        # second, misleading error ("time_config.hour: is required") to it.
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            kept = {name: errors for name, errors in error.error_dict.items() if name not in (self._errors or {})}
            if not kept:
                return
            error = ValidationError(kept)
        super().add_error(field, error)


class ScanProfileForm(forms.ModelForm):
    class Meta:
        model = ScanProfile
        fields = "__all__"
        error_messages = _json_errors("custom_pages")
        field_classes = {"custom_pages": BoundedJSONField}


@admin.register(Schedule)
class ScheduleAdmin(AuditedActionsMixin, ValidSelectionMixin, HookedExtensionsMixin, ScheduleHistoryMixin,
                    AuditSectionMixin, admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("domain", "domain_config_id", "in_words", "enabled", "next_run", "last_run", "last_status")
    list_filter = ("frequency", "enabled", "last_status")
    search_fields = ("domain", "domain_config_id")
    list_select_related = ("profile",)
    readonly_fields = ("schedule_id", "from_api", "upcoming_runs", "next_run", "last_run", "last_status", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("schedule_id", "domain_config_id", "domain", "profile", "enabled")}),
        ("When", {"fields": ("frequency", "time_config", "timezone", "spread_minutes", "upcoming_runs")}),
        ("Scan settings", {"fields": ("scan_settings", "edited_manually", "from_api")}),
        ("State", {"fields": ("next_run", "last_run", "last_status", "created_at", "updated_at")}),
    )
    own_actions = ("enable_schedules", "disable_schedules", "run_now")  # then those of hooks (pause, re-run)

    def get_urls(self):
        sync = path("sync-from-api/", sync_view(model_admin=self), name="schedules_schedule_sync")
        return [sync, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_sync_permission": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    @admin.display(description="schedule", ordering="frequency")
    def in_words(self, obj: Schedule) -> str:
        return obj.description

    @admin.display(description=f"next {UPCOMING_COUNT} runs")
    def upcoming_runs(self, obj: Schedule):
        if obj.pk is None or obj._state.adding:
            return "Shown after saving."
        try:
            times = obj.upcoming_runs(count=UPCOMING_COUNT)
        except TimeConfigError as exc:
            return f"Invalid: {exc}"
        if not times:
            return "No further runs."
        local = [t.astimezone(timezone.get_current_timezone()) for t in times]
        return format_html_join("", "<div>{} <small>({})</small></div>", ((t.isoformat(), obj.timezone) for t in local))

    def save_model(self, request, obj, form, change):
        # Made or edited by hand: the API import leaves it alone unless forced.
        obj.edited_manually = True
        super().save_model(request, obj, form, change)
        warning = skipped_months_warning(obj.frequency, obj.time_config)
        if warning:
            self.message_user(request, warning, messages.WARNING)

    def _set_enabled(self, request, queryset, enabled: bool):
        ids = Schedule.objects.filter(pk__in=queryset.values("pk")).set_enabled(enabled)
        count = len(ids)
        # bulk_update sends no signals: announce the change to running schedulers here.
        publish_schedule_changes(ids)
        word = "Enabled" if enabled else "Disabled"
        self.message_user(request, f"{word} {count} schedule(s).", messages.SUCCESS)

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable_schedules(self, request, queryset):
        self._set_enabled(request, queryset, False)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request, queryset):
        if not live_instances().exists():
            self.message_user(request, "No scheduler instance is running, so nothing was queued. "
                              "Start `python manage.py runscheduler` and try again.", messages.ERROR)
            return
        for schedule in queryset:
            queue_manual_run(schedule_id=schedule.schedule_id, domain=schedule.domain,
                             domain_config_id=schedule.domain_config_id, requested_by=request.user.get_username())
        self.message_user(request, f"Queued {queryset.count()} manual run(s); a running scheduler picks them up "
                          "within a second (see Job executions).", messages.SUCCESS)


@admin.register(ScanProfile)
class ScanProfileAdmin(AuditedActionsMixin, ValidSelectionMixin, AuditSectionMixin, admin.ModelAdmin):
    form = ScanProfileForm
    list_display = ("name", "max_pages", "scan_depth", "max_retries", "allow_deep_scan", "updated_at")
    search_fields = ("name",)


@admin.register(SchedulerInstance)
class SchedulerInstanceAdmin(admin.ModelAdmin):
    list_display = ("instance_id", "alive", "host", "pid", "started_at", "last_seen", "stopped_at", "shards_held",
                    "schedules_loaded", "running_now")

    def get_queryset(self, request):
        return super().get_queryset(request).with_liveness()

    @admin.display(description="shards")
    def shards_held(self, obj) -> str:
        """The shards this instance reported holding at its last heartbeat (runtime/shard_leases.py)."""
        held = (obj.status or {}).get("shards") or []
        if not obj.is_live or not held:
            return "-"
        return f"{len(held)}: {shards.describe_shards(held)}"

    @admin.display(description="schedules loaded", ordering="jobs_loaded")
    def schedules_loaded(self, obj) -> int:
        return obj.jobs_loaded

    @admin.display(boolean=True, ordering="-is_live", description="alive")
    def alive(self, obj) -> bool:
        return obj.is_live

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
