"""How re-runs plug into schedules, registered in RerunsConfig.ready(): the chore
that queues waiting re-runs, and the "Re-run missed slots…" action of the schedule admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from reruns.admin import rerun_missed
from reruns.services import promote_waiting
from schedules import hooks

ADMIN = hooks.ScheduleAdminExtension(actions=(rerun_missed,))


def waiting_reruns_chore(config: Any, *, clock: Callable[[], datetime]) -> hooks.Chore:
    """Every second, each schedule's earliest waiting re-run is queued when the schedule has nothing queued."""
    return hooks.Chore("reruns", 1.0, promote_waiting)


def register() -> None:
    hooks.register_chore(waiting_reruns_chore)
    hooks.register_schedule_admin(ADMIN)
