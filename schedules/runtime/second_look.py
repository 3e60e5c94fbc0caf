"""Second look: a slot APScheduler refused as "max instances" is checked a few seconds later.
If no instance claimed it meanwhile, this instance claims it (the claim decides whether still in time).
"""
# Each noted slot keeps the time it was fired: the grace time counts to then,
# since the slot was fired in time even if it was refused.

from __future__ import annotations

import threading
import time
from datetime import datetime

from history import queue as queue_store
from schedules.runtime.specs import JobSpec

VERIFY_AFTER_SECONDS = 3.0


class LostSlotCheck:
    def __init__(self, *, verify_after: float = VERIFY_AFTER_SECONDS):
        self.verify_after = verify_after
        self._pending: list[tuple[float, JobSpec, datetime, datetime]] = []
        self._mutex = threading.Lock()

    def note(self, spec: JobSpec, slot: datetime, fired_at: datetime) -> None:
        with self._mutex:
            self._pending.append((time.monotonic() + self.verify_after, spec, slot, fired_at))

    def unclaimed(self) -> list[tuple[JobSpec, datetime, datetime]]:
        """(spec, slot, fired_at) of noted slots whose check is due and that still have no row."""
        now = time.monotonic()
        with self._mutex:
            due = [item for item in self._pending if item[0] <= now]
            self._pending = [item for item in self._pending if item[0] > now]
        if not due:
            return []
        try:
            existing = queue_store.claimed_among([(spec.schedule_id, slot) for _, spec, slot, _ in due])
        except Exception:
            with self._mutex:  # the database is away: look again next time
                self._pending.extend(due)
            raise
        return [(spec, slot, fired) for _, spec, slot, fired in due if (spec.schedule_id, slot) not in existing]
