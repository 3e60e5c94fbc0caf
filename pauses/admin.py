"""Pause and resume in admin: two actions on the schedule list (pausing asks
for a reason and an optional resume time) and the pause record on each
schedule's page (who paused it, why, until when); pauses.hooks adds them to
the schedule admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from pauses.models import SchedulePause
from pauses.services import pause_schedules, resume_schedules
from scanner_project.admin_forms import action_with_form
from schedules.hooks import AdminSection


class PauseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Shown on each skipped slot in the history.")
    resume_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional: the schedules resume by themselves then. Empty: until resumed by hand.",
    )


@admin.action(description="Pause selected schedules (with a note)…", permissions=["change"])
def pause_selected(modeladmin, request, queryset):
    def apply(data: dict) -> str:
        count = pause_schedules(schedule_ids=list(queryset.values_list("pk", flat=True)), reason=data["reason"],
                                resume_at=data["resume_at"], paused_by=request.user.get_username())
        skipped = queryset.count() - count
        return (f"Paused {count} schedule(s); their slots are recorded skipped with your note"
                + (f" ({skipped} already paused, left as they were)." if skipped else "."))

    zone = timezone.get_current_timezone_name()
    return action_with_form(
        modeladmin, request, queryset, form_class=PauseForm, action="pause_selected", title="Pause schedules",
        submit=f"Pause {queryset.count()} schedule(s)", apply=apply,
        intro="Pausing is not disabling: the schedules stay loaded, and every slot that falls in the pause is "
              f"recorded skipped with your note, so their history shows why nothing ran. Times are {zone}.",
    )


@admin.action(description="Resume selected schedules", permissions=["change"])
def resume_selected(modeladmin, request, queryset):
    count = resume_schedules(schedule_ids=list(queryset.values_list("pk", flat=True)),
                             resumed_by=request.user.get_username())
    modeladmin.message_user(request, f"Resumed {count} paused schedule(s).", messages.SUCCESS)


@admin.display(description="pause")
def pause_state(schedule) -> str:
    """Whether the schedule is paused, by whom, why and until when, and its earlier pauses."""
    pauses = list(SchedulePause.objects.filter(schedule=schedule)[:PAUSES_SHOWN])
    if not pauses:
        return "Not paused. To pause with a note, select it on the schedule list and use the action."
    rows = format_html_join("", "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (state_of(p), p.reason, p.paused_by, _local(p.paused_at),
         f"until {_local(p.resume_at)}" if p.resume_at and p.resumed_at is None
         else f"resumed {_local(p.resumed_at)} by {p.resumed_by}" if p.resumed_at else "until resumed")
        for p in pauses))
    return format_html('<table class="pause-record"><tr><th>state</th><th>reason</th><th>paused by</th>'
                       "<th>paused at</th><th>ends</th></tr>{}</table>", rows)


# A "Pause" section on a saved schedule's page, right after its first fieldset
# (registered on the schedule admin in pauses.hooks).
PAUSE_SECTION = AdminSection("Pause", (pause_state,), permission="pauses.view_schedulepause", first=True)

PAUSES_SHOWN = 10


def _local(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if value else ""


def state_of(pause: SchedulePause, *, now=None) -> str:
    now = now or timezone.now()
    if pause.resumed_at is not None and pause.resumed_at <= now:
        return "ended"
    if pause.resume_at is not None and pause.resume_at <= now:
        return "ended (resumed by itself)"
    return "PAUSED"
