"""Heartbeat records of running scheduler instances (for admin and /healthz)."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.conf import settings
from django.db.models.functions import Now
from django.utils import timezone

from schedules.models import SchedulerInstance

# Small deployments (and the tests) can read an instance's loaded jobs from its
# record; past this many it reports counts only.
JOBS_REPORTED_MAX = 500


def default_instance_id() -> str:
    return settings.SCHEDULER_INSTANCE_ID or f"{socket.gethostname()}-{os.getpid()}"


def beat(*, instance_id: str, started_at: datetime, jobs_loaded: int, running_now: int, status: dict) -> None:
    updated = SchedulerInstance.objects.filter(instance_id=instance_id).update(
        last_seen=Now(), jobs_loaded=jobs_loaded, running_now=running_now, status=status, stopped_at=None
    )
    if not updated:
        SchedulerInstance.objects.update_or_create(
            instance_id=instance_id,
            defaults={
                "host": socket.gethostname(), "pid": os.getpid(), "started_at": started_at,
                "last_seen": Now(), "jobs_loaded": jobs_loaded, "running_now": running_now,
                "status": status, "stopped_at": None,
            },
        )


def database_clock_skew() -> float:
    """Seconds this process's clock is ahead of PostgreSQL's (0 elsewhere:
    SQLite runs on this host and its CURRENT_TIMESTAMP has whole seconds)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        before = timezone.now()
        cursor.execute("SELECT clock_timestamp()")
        db_now = cursor.fetchone()[0]
        after = timezone.now()
    return ((before + (after - before) / 2) - db_now).total_seconds()


def mark_stopped(*, instance_id: str) -> None:
    SchedulerInstance.objects.filter(instance_id=instance_id).update(stopped_at=Now(), running_now=0)


def live_instances(*, stale_after: float | None = None):
    return SchedulerInstance.objects.live(stale_after=stale_after)
