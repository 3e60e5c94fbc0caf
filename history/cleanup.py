"""Deleting old execution history in batches. It never touches the audit
trail, which keeps its own retention (AUDIT_RETENTION_DAYS, audit.pruning).

One DELETE of millions of rows holds its locks and bloats WAL for minutes; a
batch of primary keys at a time keeps each transaction short, so the
scheduler's own writes to the table never wait long.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from history.models import ExecutionStatus, JobExecution
from scanner_project.daily import once_a_day
from scanner_project.metrics import HISTORY_CLEANUP_DELETED

logger = logging.getLogger(__name__)

# One run a day across all instances (scanner_project.daily).
DUE_KEY = "history:cleanup:due"


def _old_executions(*, cutoff: datetime) -> QuerySet[JobExecution]:
    # Queued and running rows are live state an instance still works on, not history.
    return JobExecution.objects.filter(started_at__lt=cutoff).exclude(
        status__in=(ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
    )


def cleanup_old_executions(
    *, days: int, batch_size: int = 5000, dry_run: bool = False, now: datetime | None = None
) -> int:
    """Delete executions started more than ``days`` ago; returns how many
    were deleted (or, with ``dry_run``, would be)."""
    if days < 1:
        raise ValueError(f"days: {days} must be at least 1")
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} must be at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = _old_executions(cutoff=cutoff)
    if dry_run:
        return old.count()
    deleted = 0
    while True:
        pks = list(old.order_by().values_list("pk", flat=True)[:batch_size])
        if not pks:
            break
        with transaction.atomic():
            # The cutoff is checked again: a pk is never reused, but be exact.
            count, _ = old.filter(pk__in=pks).delete()
        deleted += count
        HISTORY_CLEANUP_DELETED.inc(count)
        if len(pks) < batch_size:
            break
    logger.info("History cleanup deleted %d executions started before %s", deleted, cutoff.isoformat())
    return deleted


def cleanup_if_due(*, instance_id: str) -> int | None:
    """Run the retention cleanup if HISTORY_RETENTION_DAYS is set and no
    instance has run it in the last day. None when not due or not this instance."""
    days = settings.HISTORY_RETENTION_DAYS
    if days <= 0:
        return None
    return once_a_day(key=DUE_KEY, instance_id=instance_id, task=lambda: cleanup_old_executions(days=days))
