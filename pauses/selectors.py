from __future__ import annotations

import uuid
from datetime import datetime

from .models import SchedulePause


def paused_reason(*, schedule_id: uuid.UUID, at: datetime) -> str:
    """Why the schedule's slot at ``at`` is held by a pause, or "" when it is not."""
    pause = SchedulePause.objects.filter(schedule_id=schedule_id).covering(at=at).order_by("-paused_at").first()
    if pause is None:
        return ""
    until = f" until {pause.resume_at.isoformat(timespec='seconds')}" if pause.resume_at else ""
    return f"paused by {pause.paused_by}{until}: {pause.reason}"


def open_pauses(*, schedule_ids) -> dict[uuid.UUID, SchedulePause]:
    return {p.schedule_id: p for p in SchedulePause.objects.open().filter(schedule_id__in=schedule_ids)}
