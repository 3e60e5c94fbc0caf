"""The execution history of one schedule on its admin change page."""

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from history.admin import STATUS_COLOURS
from history.admin_scan import changes_html, execution_url
from history.scan_changes import latest_scan_changes
from history.statistics import get_executions_by_schedule, get_schedule_statistics

RECENT_COUNT = 20
RATE_DAYS = 30


class ScheduleHistoryMixin:
    """Adds a "History" section (last runs, success rate, what the latest scan
    changed) to a saved schedule's page."""

    history_fields = ("success_rate", "cookie_changes", "recent_executions")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *self.history_fields)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # Runs (and their error messages) are history's data: its view permission.
        if obj is None or obj.pk is None or not request.user.has_perm("history.view_jobexecution"):
            return fieldsets
        return (*fieldsets, ("History", {"fields": self.history_fields}))

    def success_rate(self, obj):
        stats = get_schedule_statistics(schedule_id=obj.pk, days=RATE_DAYS)
        if not stats["total_executions"]:
            return f"No finished runs in the last {RATE_DAYS} days."
        return format_html(
            '<strong class="schedule-success-rate">{} %</strong> of {} finished runs in the last {} days '
            "({} failed; duration avg {} s, max {} s)",
            stats["success_rate"], stats["total_executions"], RATE_DAYS, stats["failed"],
            stats["avg_duration"] if stats["avg_duration"] is not None else "-",
            stats["max_duration"] if stats["max_duration"] is not None else "-",
        )

    success_rate.short_description = "success rate"

    def cookie_changes(self, obj):
        latest = latest_scan_changes(schedule_ids=[obj.pk]).get(obj.pk)
        if latest is None:
            return "No successful scan yet."
        scan = format_html('<a class="latest-scan" href="{}">the scan of {}</a>', execution_url(latest["execution_id"]),
                           latest["started_at"].isoformat(timespec="seconds"))
        if latest["changes"] is None:
            return format_html("The latest successful scan, {}, was not compared with an earlier one.", scan)
        return format_html("<p>The latest successful scan: {}.</p>{}", scan, changes_html(latest["changes"]))

    cookie_changes.short_description = "changes since the previous scan"

    def recent_executions(self, obj):
        executions = list(get_executions_by_schedule(schedule_id=obj.pk, limit=RECENT_COUNT))
        if not executions:
            return "No runs yet."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td style="color:{};font-weight:bold">{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:history_jobexecution_change", args=[e.pk]),
                    e.started_at.isoformat(timespec="seconds"),
                    STATUS_COLOURS.get(e.status, "inherit"),
                    e.status,
                    "" if e.duration_seconds is None else f"{e.duration_seconds:.2f} s",
                    e.error_message[:80],
                )
                for e in executions
            ),
        )
        listing = reverse("admin:history_jobexecution_changelist") + f"?q={obj.domain_config_id}"
        return format_html(
            '<table class="recent-executions"><thead><tr><th>started</th><th>status</th><th>duration</th>'
            '<th>error</th></tr></thead><tbody>{}</tbody></table><p><a href="{}">All runs of this schedule</a></p>',
            rows, listing,
        )

    recent_executions.short_description = f"last {RECENT_COUNT} runs"
