"""The hash chain behind the audit trail.

Each entry carries ``hash`` = SHA-256 over a canonical JSON of its content and
``prev_hash``, the hash of the entry before it (GENESIS for the first one). The
order of the chain is the order of ``id``: every writer takes the chain head
row with ``SELECT ... FOR UPDATE`` before it writes audited rows and holds it
until its transaction ends, so ids are handed out, and entries committed, one
writer after the other (on SQLite every transaction already holds the write
lock). The head row records the last entry, so removing entries from the end
shows too.

Pruning (audit.pruning) removes a prefix of the chain and appends an entry
saying through which hash it pruned: the oldest remaining entry must follow it.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

GENESIS = "0" * 64
HEAD_ID = 1
# JSON numbers past this are compared as floats: PostgreSQL's jsonb gives
# 1e16 back as 10000000000000000, so only the float value is stable.
_EXACT_NUMBERS = 10**15

_pruning: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_pruning", default=False)


def _stable(value: Any) -> Any:
    """The value as any database gives it back (see _EXACT_NUMBERS)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        if abs(value) >= _EXACT_NUMBERS:
            return float(value)
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if isinstance(value, dict):
        return {str(key): _stable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(item) for item in value]
    return str(value)


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(entry) -> bytes:
    """The bytes an entry's hash covers: every field that says what happened, and the previous hash."""
    content = {
        "v": 1,
        "model": entry.model,
        "object_id": str(entry.object_id),
        "object_label": entry.object_label,
        "action": entry.action,
        "actor_kind": entry.actor_kind,
        "actor": entry.actor,
        "changes": _stable(entry.changes),
        "created_at": _instant(entry.created_at),
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def lock():
    """The chain head, locked until the current transaction ends (call inside atomic()).

    A missing head (a flushed database) starts a new chain at GENESIS: if
    entries remain, the verifier then names the first entry written after."""
    from audit.models import AuditChainHead

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the audit chain is locked inside a transaction only")
    head = AuditChainHead.objects.select_for_update().filter(pk=HEAD_ID).first()
    if head is None:
        AuditChainHead.objects.bulk_create([AuditChainHead(pk=HEAD_ID, last_hash=GENESIS)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(pk=HEAD_ID)
    return head


def append(entries: list, *, insert) -> None:
    """Chain ``entries`` after the head and write them with ``insert()``."""
    if not entries:
        insert()
        return
    with transaction.atomic():
        head = lock()
        now = timezone.now()
        previous = head.last_hash
        for entry in entries:
            entry.created_at = now
            entry.prev_hash = previous
            entry.hash = previous = entry_hash(entry)
        insert()
        last_id = entries[-1].pk
        if last_id is None:  # a backend that does not return ids from bulk inserts
            last_id = type(entries[-1]).objects.order_by("-id").values_list("id", flat=True).first()
        type(head).objects.filter(pk=HEAD_ID).update(last_id=last_id, last_hash=previous, updated_at=now)


@contextlib.contextmanager
def pruning():
    """Deleting entries is refused except inside this (audit.pruning)."""
    token = _pruning.set(True)
    try:
        yield
    finally:
        _pruning.reset(token)


def deleting_allowed() -> bool:
    return _pruning.get()
