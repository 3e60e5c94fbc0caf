"""Due: whether a fired slot is claimed, folded into a later slot, or recorded as not run.
One rule (the grace time, then coalescing) for every path that fires a slot: the executor, the claim, the second look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from history.wording import duration_in_words


@dataclass(frozen=True)
class Verdict:
    run: bool
    reason: str = ""  # why not: stored as the slot's error_message


RUN = Verdict(run=True)


def verdict(*, slot: datetime, fired_at: datetime, now: datetime, grace: float, coalesce: bool,
            later_slot: datetime | None) -> Verdict:
    """``fired_at``: when the slot was handed over (a herd waiting for a
    firing thread is not late); ``later_slot``: the schedule's next slot
    after this one, if known. With JOB_COALESCE a slot whose later slot is
    already due is folded into it: the latest slot runs, not a backlog."""
    late = fired_at - slot
    if late > timedelta(seconds=grace):
        return Verdict(run=False, reason=f"missed by {duration_in_words(late)}: later than the grace time")
    if coalesce and later_slot is not None and later_slot <= now:
        return Verdict(run=False, reason=f"coalesced: the schedule's later slot {later_slot.isoformat()} is already due")
    return RUN


def later_slot_of(trigger: BaseTrigger, slot: datetime) -> datetime | None:
    """The trigger's first slot after ``slot``."""
    return trigger.get_next_fire_time(slot, slot + timedelta(microseconds=1))
