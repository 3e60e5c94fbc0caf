"""The admin dashboard: history statistics, charts, next runs, live instances.

It lives in schedules (not history) because it shows schedules and scheduler
instances; history must never import schedules.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils import timezone

from history import statistics
from history.admin import STATUS_COLOURS
from schedules.admin import charts
from schedules.models import Schedule, SchedulerInstance

WINDOWS = (("24 hours", timedelta(hours=24)), ("7 days", timedelta(days=7)), ("30 days", timedelta(days=30)))
CHART_DAYS = 14
DELAY_HOURS = 24
OTHER_COLOUR = "#9a6700"


def next_runs(*, limit: int = 10) -> QuerySet[Schedule]:
    return Schedule.objects.filter(enabled=True, next_run__isnull=False).order_by("next_run")[:limit]


def window_statistics(*, now: datetime) -> list[dict]:
    # One aggregate for all windows: the 30-day scan covers the shorter ones.
    rows = statistics.get_statistics_for_windows(lengths=[length for _, length in WINDOWS], now=now)
    return [{"label": label, **row} for (label, _), row in zip(WINDOWS, rows, strict=True)]


def _charts(*, now: datetime) -> dict:
    outcomes = statistics.get_daily_outcomes(days=CHART_DAYS, now=now)
    durations = statistics.get_daily_durations(days=CHART_DAYS, now=now)
    labels = [row["day"].strftime("%m-%d") for row in outcomes]
    outcome_series = [
        ("success", STATUS_COLOURS["success"], [row["success"] for row in outcomes]),
        ("failed", STATUS_COLOURS["failed"], [row["failed"] for row in outcomes]),
        ("other", OTHER_COLOUR, [row["other"] for row in outcomes]),
    ]
    duration_series = [
        ("average", "#0969da", [row["avg"] for row in durations]),
        ("maximum", "#8250df", [row["max"] for row in durations]),
    ]
    delays = statistics.get_hourly_start_delays(hours=DELAY_HOURS, now=now)
    delay_series = [
        ("average", "#0969da", [row["avg"] for row in delays]),
        ("maximum", "#bc4c00", [row["max"] for row in delays]),
    ]
    return {
        "delays_chart": charts.lines(label="Start delay per hour (slot to worker)",
                                     labels=[timezone.localtime(row["hour"]).strftime("%H:00") for row in delays],
                                     series=delay_series, unit=" s"),
        "delays_legend": charts.legend([(name, colour) for name, colour, _ in delay_series]),
        "outcomes_chart": charts.stacked_bars(label="Executions per day by outcome", labels=labels,
                                              series=outcome_series),
        "outcomes_legend": charts.legend([(name, colour) for name, colour, _ in outcome_series]),
        "durations_chart": charts.lines(label="Scan duration per day", labels=labels, series=duration_series,
                                        unit=" s"),
        "durations_legend": charts.legend([(name, colour) for name, colour, _ in duration_series]),
    }


# Each part of the page shows one model's data and needs permission to view it.
SECTION_PERMISSIONS = {
    "history": "history.view_jobexecution",
    "schedules": "schedules.view_schedule",
    "instances": "schedules.view_schedulerinstance",
}


def dashboard_context(*, now: datetime | None = None, sections: frozenset = frozenset(SECTION_PERMISSIONS)) -> dict:
    now = now or timezone.now()
    context = {"now": now, "sections": sections, "chart_days": CHART_DAYS, "stale_seconds": settings.INSTANCE_STALE_SECONDS}
    if "history" in sections:
        context.update(windows=window_statistics(now=now), **_charts(now=now),
                       failing=statistics.get_failing_schedules(days=7, limit=10, now=now),
                       queue=statistics.get_queue_backlog(), queue_warn_seconds=settings.QUEUE_WARN_SECONDS,
                       delay_hours=DELAY_HOURS)
    if "schedules" in sections:
        context["next_runs"] = list(next_runs(limit=10))
    if "instances" in sections:
        context["instances"] = list(SchedulerInstance.objects.live().order_by("instance_id"))
    return context


def dashboard_view(request):
    """Staff only (admin.site.admin_view in the URLconf), and each section only
    with the view permission of what it shows."""
    sections = frozenset(name for name, perm in SECTION_PERMISSIONS.items() if request.user.has_perm(perm))
    if not sections:
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": "Scheduler dashboard",
               **dashboard_context(sections=sections)}
    return TemplateResponse(request, "admin/dashboard.html", context)
