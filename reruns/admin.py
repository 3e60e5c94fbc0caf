"""The "Re-run missed slots…" action on the schedule list, and the list of
re-runs (read-only)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone

from reruns.models import SlotRerun
from reruns.services import queue_missed_slots
from scanner_project.admin_forms import action_with_form
from scanner_project.admin_readonly import ReadOnlyAdmin
from schedules.instances import live_instances

DEFAULT_DAYS = 7


class PeriodForm(forms.Form):
    since = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                help_text="Missed slots from this time on…")
    until = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                help_text="…up to (not including) this time.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        now = timezone.localtime().replace(second=0, microsecond=0)
        self.fields["since"].initial = (now - timedelta(days=DEFAULT_DAYS)).strftime("%Y-%m-%dT%H:%M")
        self.fields["until"].initial = now.strftime("%Y-%m-%dT%H:%M")


@admin.action(description="Re-run missed slots…", permissions=["change"])
def rerun_missed(modeladmin, request, queryset):
    def apply(data: dict) -> str:
        result = queue_missed_slots(schedule_ids=list(queryset.values_list("pk", flat=True)), since=data["since"],
                                    until=data["until"], requested_by=request.user.get_username())
        text = f"Queued {result.queued} missed slot(s) to run again, one at a time per schedule"
        if result.already_queued:
            text += f"; {result.already_queued} had been queued before and are not queued twice"
        if result.queued and not live_instances().exists():
            text += ". No scheduler instance is running: they run once one starts"
        return text + ". The missed rows stay in the history; each re-run is a manual run linked to its slot."

    return action_with_form(
        modeladmin, request, queryset, form_class=PeriodForm, action="rerun_missed", title="Re-run missed slots",
        submit="Queue the missed slots", apply=apply,
        intro="Each missed slot of the selected schedules in this period is queued once as a manual run; a "
              f"slot queued before is not queued again. Times are {timezone.get_current_timezone_name()}.",
    )


@admin.register(SlotRerun)
class SlotRerunAdmin(ReadOnlyAdmin):
    list_display = ("requested_at", "scheduled_for", "schedule_id", "status", "requested_by", "rerun_execution_id")
    list_filter = ("status",)
    readonly_fields = ("missed_execution_id", "schedule_id", "scheduled_for", "status", "rerun_execution_id",
                       "requested_by", "requested_at")
