"""Audit entries follow the history's retention (HISTORY_RETENTION_DAYS)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from .models import AuditEntry

BATCH = 5000


def cleanup_old_entries(*, days: int, now: datetime) -> int:
    """Delete entries older than ``days``, in batches; returns how many."""
    if days < 1:
        raise ValueError(f"days: {days} must be at least 1")
    old = AuditEntry.objects.filter(created_at__lt=now - timedelta(days=days))
    deleted = 0
    while True:
        pks = list(old.order_by().values_list("pk", flat=True)[:BATCH])
        if not pks:
            return deleted
        with transaction.atomic():
            deleted += AuditEntry.objects.filter(pk__in=pks).delete()[0]
