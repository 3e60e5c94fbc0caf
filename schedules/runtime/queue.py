"""Queue: a claimed slot waits as a `queued` row for any instance's worker, never expiring.
With JOB_COALESCE a newer slot folds its schedule's older queued one (missed, "coalesced").
"""

from __future__ import annotations

import logging
from datetime import datetime

from history import queue as queue_store
from schedules.runtime.context import RunContext
from schedules.runtime.specs import JobSpec

logger = logging.getLogger("schedules.runtime")


def enqueued(ctx: RunContext, claimed: list[tuple[JobSpec, datetime]], *, wake: bool = True) -> None:
    """After this instance claimed slots: fold the older queued ones of their
    schedules (one UPDATE per slot time: a herd is one), and wake the taker
    (not needed when every claim went straight to a worker here)."""
    if ctx.config.coalesce:
        by_slot: dict[datetime, list[JobSpec]] = {}
        for spec, scheduled_for in claimed:
            if spec.frequency != "once":  # a once schedule has no older slot to fold
                by_slot.setdefault(scheduled_for, []).append(spec)
        for scheduled_for, specs in by_slot.items():
            folded = queue_store.fold_queued(schedule_ids=[spec.schedule_id for spec in specs], before=scheduled_for,
                                         reason=f"coalesced: the schedule's later slot {scheduled_for.isoformat()} is due")
            if folded:
                logger.info("Coalesced %d queued slot(s) of %d schedule(s) into %s", folded, len(specs), scheduled_for)
    if wake:
        ctx.queue_wake.set()
