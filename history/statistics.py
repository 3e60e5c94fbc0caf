"""Reads of the execution history: statistics and chart series.

Every number comes from one SQL aggregate over an indexed time window, never
from rows loaded into Python: the table reaches millions of rows. The clock is
a keyword parameter (``now=``) so callers and tests decide what "now" is;
queue age alone is read on the database's clock (see get_queue_backlog).

Counting rules: a window holds the executions *started* in [now - window, now).
``total_executions`` counts finished ones only (queued and running have no
outcome yet), so ``success_rate`` = successful / total_executions; skipped,
missed, abandoned and interrupted slots count against it like failures.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Min, Q, QuerySet
from django.db.models.functions import Now, TruncDate, TruncHour
from django.utils import timezone

from history.models import FINISHED_STATUSES, ExecutionStatus, ExecutionTrigger, JobExecution

SUCCESS = Q(status=ExecutionStatus.SUCCESS)
FAILED = Q(status=ExecutionStatus.FAILED)
MISSED = Q(status=ExecutionStatus.MISSED)
SKIPPED = Q(status=ExecutionStatus.SKIPPED)
# Outcomes that are neither success nor failed (skipped, missed, ...).
OTHER = Q(status__in=FINISHED_STATUSES) & ~SUCCESS & ~FAILED

STATISTICS_KEYS = (
    "total_executions", "successful", "failed", "success_rate", "avg_duration", "min_duration", "max_duration",
)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def finished_in_window(*, since: datetime, until: datetime) -> QuerySet[JobExecution]:
    return JobExecution.objects.filter(started_at__gte=since, started_at__lt=until, status__in=FINISHED_STATUSES)


def success_rate(*, successful: int, total: int) -> float:
    # An empty window has no rate; 0.0 keeps templates and JSON simple.
    return round(100.0 * successful / total, 1) if total else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _statistics(queryset: QuerySet[JobExecution]) -> dict:
    row = queryset.aggregate(
        total_executions=Count("pk"),
        successful=Count("pk", filter=SUCCESS),
        failed=Count("pk", filter=FAILED),
        avg_duration=Avg("duration_seconds"),
        min_duration=Min("duration_seconds"),
        max_duration=Max("duration_seconds"),
    )
    return {
        "total_executions": row["total_executions"],
        "successful": row["successful"],
        "failed": row["failed"],
        "success_rate": success_rate(successful=row["successful"], total=row["total_executions"]),
        "avg_duration": _round(row["avg_duration"]),
        "min_duration": _round(row["min_duration"]),
        "max_duration": _round(row["max_duration"]),
    }


def get_execution_statistics(*, days: int = 7, now: datetime | None = None) -> dict:
    """The design's statistics dict (keys in STATISTICS_KEYS) for the last ``days``."""
    until = _now(now)
    return _statistics(finished_in_window(since=until - timedelta(days=days), until=until))


def get_window_statistics(*, since: datetime, until: datetime) -> dict:
    return _statistics(finished_in_window(since=since, until=until))


def get_statistics_for_windows(*, lengths: list[timedelta], now: datetime | None = None) -> list[dict]:
    """Statistics for several windows ending now (e.g. 24 h, 7 d, 30 d) in ONE
    scan of the longest: each window is a FILTER on the same aggregate."""
    until = _now(now)
    aggregates = {}
    for i, length in enumerate(lengths):
        inside = Q(started_at__gte=until - length)
        aggregates |= {
            f"total_{i}": Count("pk", filter=inside),
            f"successful_{i}": Count("pk", filter=inside & SUCCESS),
            f"failed_{i}": Count("pk", filter=inside & FAILED),
            f"missed_{i}": Count("pk", filter=inside & MISSED),
            f"skipped_{i}": Count("pk", filter=inside & SKIPPED),
            f"avg_{i}": Avg("duration_seconds", filter=inside),
            f"min_{i}": Min("duration_seconds", filter=inside),
            f"max_{i}": Max("duration_seconds", filter=inside),
        }
    row = finished_in_window(since=until - max(lengths), until=until).aggregate(**aggregates)
    return [
        {
            "total_executions": row[f"total_{i}"],
            "successful": row[f"successful_{i}"],
            "failed": row[f"failed_{i}"],
            # The dashboard's breakdown adds up to the finished total.
            "missed": row[f"missed_{i}"],
            "skipped": row[f"skipped_{i}"],
            "other": row[f"total_{i}"] - row[f"successful_{i}"] - row[f"failed_{i}"] - row[f"missed_{i}"]
            - row[f"skipped_{i}"],
            "success_rate": success_rate(successful=row[f"successful_{i}"], total=row[f"total_{i}"]),
            "avg_duration": _round(row[f"avg_{i}"]),
            "min_duration": _round(row[f"min_{i}"]),
            "max_duration": _round(row[f"max_{i}"]),
        }
        for i in range(len(lengths))
    ]


def get_schedule_statistics(*, schedule_id: uuid.UUID, days: int = 30, now: datetime | None = None) -> dict:
    until = _now(now)
    window = finished_in_window(since=until - timedelta(days=days), until=until)
    return _statistics(window.filter(schedule_id=schedule_id))


def get_recent_executions(*, hours: int = 24, now: datetime | None = None) -> QuerySet[JobExecution]:
    """Everything started in the last ``hours`` (running ones included), newest first."""
    until = _now(now)
    return JobExecution.objects.filter(started_at__gte=until - timedelta(hours=hours), started_at__lt=until).order_by(
        "-started_at"
    )


def get_executions_by_schedule(*, schedule_id: uuid.UUID, limit: int | None = 100) -> QuerySet[JobExecution]:
    executions = JobExecution.objects.filter(schedule_id=schedule_id).order_by("-started_at")
    return executions[:limit] if limit else executions


def _days(*, days: int, until: datetime) -> list[date]:
    today = timezone.localtime(until).date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _day_window(*, days: int, now: datetime | None) -> tuple[list[date], datetime, datetime]:
    """The last ``days`` calendar days (local time zone), today included."""
    until = _now(now)
    day_list = _days(days=days, until=until)
    tz = timezone.get_current_timezone()
    since = datetime.combine(day_list[0], datetime.min.time(), tzinfo=tz)
    return day_list, since, until


def get_daily_outcomes(*, days: int = 14, now: datetime | None = None) -> list[dict]:
    """One entry per day (oldest first, empty days included):
    {"day": date, "success": n, "failed": n, "other": n}."""
    day_list, since, until = _day_window(days=days, now=now)
    rows = (
        finished_in_window(since=since, until=until)
        .annotate(day=TruncDate("started_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(success=Count("pk", filter=SUCCESS), failed=Count("pk", filter=FAILED), other=Count("pk", filter=OTHER))
        .order_by()
    )
    by_day = {row["day"]: row for row in rows}
    return [
        {key: by_day.get(day, {}).get(key, 0) for key in ("success", "failed", "other")} | {"day": day}
        for day in day_list
    ]


def get_daily_durations(*, days: int = 14, now: datetime | None = None) -> list[dict]:
    """Per day (oldest first): {"day", "avg", "max"} in seconds, None on days without durations."""
    day_list, since, until = _day_window(days=days, now=now)
    rows = (
        finished_in_window(since=since, until=until)
        .filter(duration_seconds__isnull=False)
        .annotate(day=TruncDate("started_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(avg=Avg("duration_seconds"), max=Max("duration_seconds"))
        .order_by()
    )
    by_day = {row["day"]: row for row in rows}
    return [
        {"day": day, "avg": _round(by_day.get(day, {}).get("avg")), "max": _round(by_day.get(day, {}).get("max"))}
        for day in day_list
    ]


def get_failing_schedules(*, days: int = 7, limit: int = 10, now: datetime | None = None) -> list[dict]:
    """Schedules with the most failed runs in the window:
    [{"schedule_id", "domain_config_id", "domain", "failed", "total", "success_rate"}], worst first."""
    until = _now(now)
    rows = (
        finished_in_window(since=until - timedelta(days=days), until=until)
        .values("schedule_id", "domain_config_id")
        .annotate(
            domain=Max("domain"),
            failed=Count("pk", filter=FAILED),
            successful=Count("pk", filter=SUCCESS),
            total=Count("pk"),
        )
        .filter(failed__gt=0)
        .order_by("-failed", "domain_config_id")[:limit]
    )
    return [
        {
            "schedule_id": row["schedule_id"],
            "domain_config_id": row["domain_config_id"],
            "domain": row["domain"],
            "failed": row["failed"],
            "total": row["total"],
            "success_rate": success_rate(successful=row["successful"], total=row["total"]),
        }
        for row in rows
    ]


# Rows a worker took from the queue: their started_at is when a worker began.
TAKEN = (ExecutionStatus.RUNNING, ExecutionStatus.SUCCESS, ExecutionStatus.FAILED, ExecutionStatus.SKIPPED,
         ExecutionStatus.ABANDONED, ExecutionStatus.INTERRUPTED)
START_DELAY = ExpressionWrapper(F("started_at") - F("scheduled_for"), output_field=DurationField())


def get_queue_backlog(*, using: str = "default") -> dict:
    """{"depth": queued executions, "oldest_seconds": how long the oldest has
    waited (None when the queue is empty)}: the one definition of queue age,
    read by /healthz, /metrics, the dashboard and the queue alert.

    "Waiting since" is a queued row's ``started_at``: until a worker takes the
    row it holds the time the row entered the queue. A claimed slot and a
    manual run write it when they are queued; a row put back after a failed
    delivery (requeue at shutdown, rescue_orphaned after its instance died)
    gets ``started_at = created_at`` again, so it keeps its place and its age
    counts from when it was first queued (it has waited that long for an
    outcome). It is also the column take_queued orders by, so the oldest row
    by this age is the one next in line, and the partial queue index covers it.

    The age is measured on the database's clock (``now() - min(started_at)``
    in the same query as the depth), never this process's: every instance and
    the web process then report the same age for the same rows, whatever
    their own clocks say. A row written by an instance whose clock runs ahead
    of the database's would look younger than zero; it counts as 0."""
    row = JobExecution.objects.using(using).filter(status=ExecutionStatus.QUEUED).aggregate(
        depth=Count("pk"), age=ExpressionWrapper(Now() - Min("started_at"), output_field=DurationField()))
    age = row["age"]
    return {"depth": row["depth"],
            "oldest_seconds": None if age is None else round(max(age.total_seconds(), 0.0), 1)}


def get_hourly_start_delays(*, hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Per hour (oldest first, the current one included): {"hour", "avg", "max"}
    seconds from scheduled slot to a worker starting it; None in hours without runs."""
    until = _now(now)
    current = until.replace(minute=0, second=0, microsecond=0)
    hour_list = [current - timedelta(hours=offset) for offset in range(hours - 1, -1, -1)]
    rows = (
        JobExecution.objects.filter(started_at__gte=hour_list[0], started_at__lt=until, status__in=TAKEN,
                                    trigger=ExecutionTrigger.SCHEDULED, scheduled_for__isnull=False)
        .annotate(hour=TruncHour("started_at", tzinfo=dt_timezone.utc), delay=START_DELAY)
        .values("hour")
        .annotate(avg=Avg("delay"), max=Max("delay"))
        .order_by()
    )
    by_hour = {row["hour"]: row for row in rows}

    def seconds(value) -> float | None:
        return None if value is None else _round(max(value.total_seconds(), 0.0))

    return [{"hour": hour, "avg": seconds(by_hour.get(hour, {}).get("avg")),
             "max": seconds(by_hour.get(hour, {}).get("max"))} for hour in hour_list]
