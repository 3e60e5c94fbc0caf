"""The original design's ``get_job_history()`` facade over the selectors.

    history = get_job_history()
    history.get_recent_executions(hours=24)
    history.get_executions_by_schedule(schedule_id)
    history.get_execution_statistics(days=7)
    history.cleanup_old_executions(days=90)
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import QuerySet

from history import cleanup, statistics
from history.models import JobExecution


class JobHistory:
    """Stateless: every call reads the database; safe to share between threads."""

    def get_recent_executions(self, hours: int = 24, *, now: datetime | None = None) -> QuerySet[JobExecution]:
        return statistics.get_recent_executions(hours=hours, now=now)

    def get_executions_by_schedule(self, schedule_id: uuid.UUID, *, limit: int | None = 100) -> QuerySet[JobExecution]:
        return statistics.get_executions_by_schedule(schedule_id=schedule_id, limit=limit)

    def get_execution_statistics(self, days: int = 7, *, now: datetime | None = None) -> dict:
        return statistics.get_execution_statistics(days=days, now=now)

    def get_schedule_statistics(self, schedule_id: uuid.UUID, days: int = 30, *, now: datetime | None = None) -> dict:
        return statistics.get_schedule_statistics(schedule_id=schedule_id, days=days, now=now)

    def cleanup_old_executions(self, days: int = 90, *, dry_run: bool = False, now: datetime | None = None) -> int:
        return cleanup.cleanup_old_executions(days=days, dry_run=dry_run, now=now)


_JOB_HISTORY = JobHistory()


def get_job_history() -> JobHistory:
    return _JOB_HISTORY
