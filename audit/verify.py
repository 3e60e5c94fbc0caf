"""Walking the audit chain (``manage.py verifyaudit``).

In id order, every entry must match its own hash and name the hash of the
entry before it. The oldest entry starts the chain (GENESIS) or follows what
the latest prune entry says it removed last; the newest is the one the chain
head records. The first entry that breaks one of these is named.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit import chain
from audit.models import AuditAction, AuditChainHead, AuditEntry
from audit.pruning import through_hash


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: str
    broken_id: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_id is None and not self.problem


def _named(entry: AuditEntry) -> str:
    return f"#{entry.pk} ({entry.action} {entry.model} {entry.object_label!r}, {entry.created_at.isoformat()})"


def verify_chain(*, chunk_size: int = 2000) -> ChainReport:
    head = AuditChainHead.objects.filter(pk=chain.HEAD_ID).first()
    latest_prune = AuditEntry.objects.filter(action=AuditAction.PRUNE).order_by("-id").first()
    start = through_hash(latest_prune) if latest_prune is not None else chain.GENESIS
    previous: AuditEntry | None = None
    checked = 0

    def broken(entry_id: int | None, problem: str) -> ChainReport:
        return ChainReport(checked=checked, head_hash=head.last_hash if head else "", broken_id=entry_id,
                           problem=problem)

    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=chunk_size):
        if chain.entry_hash(entry) != entry.hash:
            return broken(entry.pk, f"entry {_named(entry)} does not match its hash: it was altered")
        if previous is None and entry.prev_hash != start:
            what = (f"the last entry the latest prune removed (#{latest_prune.pk})" if latest_prune
                    else "the start of the chain")
            return broken(entry.pk, f"entry {_named(entry)} is the oldest, but it does not follow {what}: "
                                    "older entries were removed")
        if previous is not None and entry.prev_hash != previous.hash:
            return broken(entry.pk, f"entry {_named(entry)} does not follow entry #{previous.pk}: "
                                    "an entry between them was removed, or one of them was inserted")
        previous, checked = entry, checked + 1
    if previous is None:
        if head is not None and head.last_id is not None:
            return broken(head.last_id, f"the chain head records entry #{head.last_id}, but no entry is left: "
                                        "they were removed")
        return ChainReport(checked=0, head_hash=head.last_hash if head else chain.GENESIS)
    if head is None:
        return broken(previous.pk, "the chain head row is missing")
    if head.last_hash != previous.hash:
        return broken(head.last_id, f"the chain head records entry #{head.last_id} as the last, but the last "
                                    f"entry is #{previous.pk}: entries were removed from the end, or added "
                                    "without the chain")
    return ChainReport(checked=checked, head_hash=head.last_hash)
