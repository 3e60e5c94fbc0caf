"""Pausing and resuming schedules (admin actions, the Python API)."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import recording as audit
from audit.actor import acting_as
from audit.models import ActorKind, AuditAction
from pauses.models import SchedulePause
from schedules.models import Schedule, ScheduleChange
from schedules.notify import publish_schedule_changes

AUTOMATIC = "automatic"


def close_expired(*, schedule_ids: list[uuid.UUID] | None = None, now: datetime) -> int:
    """Mark pauses past their resume time as resumed (automatically), so the
    record says when each pause ended; the trail says so too."""
    expired = SchedulePause.objects.open().filter(resume_at__lte=now)
    if schedule_ids is not None:
        expired = expired.filter(schedule_id__in=schedule_ids)
    if not expired.exists():  # every few seconds on every scheduler: no chain lock for nothing
        return 0
    with acting_as(ActorKind.AUTOMATIC, "resume_at reached"), audit.locked():
        # Read again under the lock: what another scheduler closed meanwhile is not ours to record.
        ids = list(expired.values_list("schedule_id", flat=True))
        count = expired.update(resumed_at=F("resume_at"), resumed_by=AUTOMATIC)
        audit.record_event(Schedule, ids, action=AuditAction.RESUME, changes={"paused": ["yes", None]})
    return count


def pause_schedules(*, schedule_ids: list[uuid.UUID], reason: str, paused_by: str,
                    resume_at: datetime | None = None, now: datetime | None = None) -> int:
    """Pause each schedule not paused yet; returns how many were paused.

    Raises ValidationError naming the field when the reason is empty or the
    resume time is not in the future; nothing is stored then."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "reason: say why the schedules are paused (it is shown in their history)"})
    if resume_at is not None and resume_at <= now:
        raise ValidationError({"resume_at": f"resume_at: {resume_at.isoformat()} is not in the future"})
    # The chain lock first: a concurrent pause of the same schedules waits, then sees this one.
    with transaction.atomic(), audit.locked():
        close_expired(schedule_ids=schedule_ids, now=now)
        already = set(SchedulePause.objects.open().filter(schedule_id__in=schedule_ids)
                      .values_list("schedule_id", flat=True))
        new = [SchedulePause(schedule_id=pk, reason=reason, paused_by=paused_by, paused_at=now, resume_at=resume_at)
               for pk in dict.fromkeys(schedule_ids) if pk not in already]
        SchedulePause.objects.bulk_create(new)
        _tell_schedulers([p.schedule_id for p in new])
        until = resume_at.isoformat(timespec="seconds") if resume_at else "resumed by hand"
        audit.record_event(Schedule, [p.schedule_id for p in new], action=AuditAction.PAUSE,
                           changes={"paused": [None, f"{reason} (until {until})"]})
    return len(new)


def resume_schedules(*, schedule_ids: list[uuid.UUID], resumed_by: str, now: datetime | None = None) -> int:
    """End the open pauses of these schedules; returns how many were paused."""
    now = now or timezone.now()
    with transaction.atomic(), audit.locked():
        close_expired(schedule_ids=schedule_ids, now=now)
        pauses = SchedulePause.objects.open().filter(schedule_id__in=schedule_ids)
        ids = list(pauses.values_list("schedule_id", flat=True))
        count = pauses.update(resumed_at=now, resumed_by=resumed_by)
        _tell_schedulers(ids)
        audit.record_event(Schedule, ids, action=AuditAction.RESUME, changes={"paused": ["yes", None]})
    return count


def _tell_schedulers(schedule_ids: list[uuid.UUID]) -> None:
    """Record the pause or resume as a change of its schedules, so that every
    scheduler takes its pause snapshot again at once (by notice) or at its
    next poll of the change log, as for any edit."""
    ScheduleChange.record(schedule_ids=schedule_ids)
    publish_schedule_changes(schedule_ids)
