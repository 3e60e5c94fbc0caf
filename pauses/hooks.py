"""How pauses plug into schedules, registered in PausesConfig.ready(): the pause
check of the slot path, the chore that ends pauses at their resume time, and the admin's actions and section."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable

from pauses.admin import PAUSE_SECTION, pause_selected, resume_selected
from pauses.selectors import PauseSnapshot, pause_snapshot, paused_reason
from pauses.services import close_expired
from schedules import hooks


class SchedulePauses:
    """The pause source (schedules.hooks.PauseSource): the schedule_pauses table."""

    def snapshot(self, *, now: datetime) -> PauseSnapshot:
        return pause_snapshot(now=now)

    def reason(self, *, schedule_id: uuid.UUID, at: datetime) -> str | None:
        return paused_reason(schedule_id=schedule_id, at=at) or None

    def __repr__(self) -> str:
        return "pauses.hooks.SOURCE"


SOURCE = SchedulePauses()
ADMIN = hooks.ScheduleAdminExtension(actions=(pause_selected, resume_selected), sections=(PAUSE_SECTION,))


def expired_pauses_chore(config: Any, *, clock: Callable[[], datetime]) -> hooks.Chore:
    """Every 10 s, the pauses past their resume time are marked resumed."""
    return hooks.Chore("pauses", 10.0, lambda: close_expired(now=clock()))


def register() -> None:
    hooks.register_pause_source(SOURCE)
    hooks.register_chore(expired_pauses_chore)
    hooks.register_schedule_admin(ADMIN)
