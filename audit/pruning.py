"""Pruning the audit trail: the only way entries are deleted.

Off by default (AUDIT_RETENTION_DAYS = 0 keeps every entry). The history's
cleanup never deletes audit entries. When set, one instance prunes daily;
``manage.py cleanupaudit --days N`` does it by hand.

Pruning removes the oldest entries in chain order (by id), up to the first
entry that is not older than the cutoff, so what stays is an unbroken end of
the chain. Each batch is one transaction holding the chain lock: it deletes
the batch and appends a ``prune`` entry naming the last entry it removed and
that entry's hash, which the oldest remaining entry's ``prev_hash`` must
equal (audit.verify). A prune stopped between batches leaves a valid chain.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import chain
from audit.actor import acting_as
from audit.models import ActorKind, AuditAction, AuditEntry
from audit.recording import record
from scanner_project.daily import once_a_day
from schedules.hooks import Chore

logger = logging.getLogger(__name__)

DUE_KEY = "audit:prune:due"
MODEL = "auditentry"


def _prunable(*, cutoff: datetime) -> QuerySet[AuditEntry]:
    """The oldest entries, up to (not including) the first one not older than ``cutoff``."""
    keep = AuditEntry.objects.filter(created_at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    entries = AuditEntry.objects.order_by("id")
    return entries if keep is None else entries.filter(id__lt=keep)


def through_hash(entry: AuditEntry) -> str:
    """The hash of the last entry a prune entry removed."""
    return entry.changes["through_hash"][0]


def prune_old_entries(*, days: int, batch_size: int = 5000, dry_run: bool = False,
                      now: datetime | None = None) -> int:
    """Delete entries older than ``days`` days, oldest first, in batches;
    returns how many were deleted (or, with ``dry_run``, would be)."""
    if days < 1:
        raise ValueError(f"days: {days} must be at least 1")
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} must be at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    if dry_run:
        return _prunable(cutoff=cutoff).count()
    deleted = 0
    while True:
        with transaction.atomic():
            chain.lock()
            batch = list(_prunable(cutoff=cutoff).values_list("id", "hash")[:batch_size])
            if not batch:
                break
            last_id, last_hash = batch[-1]
            with chain.pruning():
                count, _ = AuditEntry.objects.filter(id__lte=last_id).delete()
            record(model=MODEL, object_id=str(last_id), label=f"audit entries through #{last_id}",
                   action=AuditAction.PRUNE,
                   changes={"entries": [count, None], "older_than": [cutoff.isoformat(), None],
                            "through_id": [last_id, None], "through_hash": [last_hash, None]})
        deleted += count
        if len(batch) < batch_size:
            break
    logger.info("Audit pruning deleted %d entries older than %s", deleted, cutoff.isoformat())
    return deleted


def prune_if_due(*, instance_id: str, now: datetime | None = None) -> int | None:
    """Prune by AUDIT_RETENTION_DAYS once a day across all instances; None
    when it is off, not due, or another instance's turn."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return None

    def prune() -> int:
        with acting_as(ActorKind.AUTOMATIC, f"AUDIT_RETENTION_DAYS={days} ({instance_id})"):
            return prune_old_entries(days=days, now=now)

    return once_a_day(key=DUE_KEY, instance_id=instance_id, task=prune)


def chore(config, *, clock) -> Chore | None:
    """The scheduler's daily pruning chore (registered in AuditConfig.ready), or None when it is off."""
    if settings.AUDIT_RETENTION_DAYS <= 0:
        return None
    return Chore("audit_prune", 300.0, lambda: prune_if_due(instance_id=config.instance_id, now=clock()))
