"""Queue: a claimed slot waits as a `queued` row for any instance's worker, never expiring.
With JOB_COALESCE a newer slot folds its schedule's older queued one (missed, "coalesced").
"""

from __future__ import annotations

import logging
from datetime import datetime

from history import services as history

from ..jobs import JobSpec
from .context import RunContext

logger = logging.getLogger("schedules.runtime")


def enqueued(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *, wake: bool = True) -> None:
    """After this instance claimed a slot: fold older ones, and wake the taker
    (not needed when the claim went straight to a worker here)."""
    if ctx.coalesce and spec.frequency != "once":  # a once schedule has no older slot to fold
        folded = history.fold_queued(schedule_id=spec.schedule_id, before=scheduled_for,
                                     reason=f"coalesced: the schedule's later slot {scheduled_for.isoformat()} is due")
        if folded:
            logger.info("Coalesced %d queued slot(s) of %s into %s", folded, spec.job_id, scheduled_for)
    if wake:
        ctx.queue_wake.set()
