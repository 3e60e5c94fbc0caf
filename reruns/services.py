"""Re-running missed slots: request (admin action, command) and the queueing
of waiting re-runs one per schedule at a time (runscheduler's main loop)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from history.models import ExecutionStatus, ExecutionTrigger, JobExecution
from history.queue import queue_manual_run
from reruns.models import SlotRerun
from schedules.models import Schedule

ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


@dataclass(frozen=True)
class RerunResult:
    queued: int
    already_queued: int


def missed_slots(*, schedule_ids: list[uuid.UUID], since: datetime, until: datetime):
    return JobExecution.objects.filter(
        schedule_id__in=schedule_ids, status=ExecutionStatus.MISSED, trigger=ExecutionTrigger.SCHEDULED,
        scheduled_for__gte=since, scheduled_for__lt=until,
    ).order_by("scheduled_for")


def queue_missed_slots(*, schedule_ids: list[uuid.UUID], since: datetime, until: datetime,
                       requested_by: str) -> RerunResult:
    """Take every missed slot in [since, until) not taken before (INSERT ... ON
    CONFLICT DO NOTHING on its id) and start queueing them.

    Raises ValidationError naming the field when the period is empty."""
    if since >= until:
        raise ValidationError({"until": f"until: {until.isoformat()} is not after since: {since.isoformat()}"})
    slots = list(missed_slots(schedule_ids=schedule_ids, since=since, until=until)
                 .values("execution_id", "schedule_id", "scheduled_for"))
    request_id = uuid.uuid4()
    SlotRerun.objects.bulk_create(
        [SlotRerun(missed_execution_id=s["execution_id"], schedule_id=s["schedule_id"], request_id=request_id,
                   scheduled_for=s["scheduled_for"], requested_by=requested_by) for s in slots],
        ignore_conflicts=True, batch_size=5000,
    )
    new = SlotRerun.objects.filter(request_id=request_id).count()
    promote_waiting(schedule_ids=list({s["schedule_id"] for s in slots}))
    return RerunResult(queued=new, already_queued=len(slots) - new)


def promote_waiting(*, schedule_ids: list[uuid.UUID] | None = None) -> int:
    """Queue the earliest waiting re-run of each schedule that has no queued or
    running execution; a re-run that was skipped (it met another run of the
    schedule) waits again. Returns how many were queued."""
    _requeue_skipped()
    waiting = SlotRerun.objects.filter(status=SlotRerun.Status.WAITING)
    if schedule_ids is not None:
        waiting = waiting.filter(schedule_id__in=schedule_ids)
    queued = 0
    for schedule_id in set(waiting.values_list("schedule_id", flat=True)):
        queued += _promote_one(schedule_id)
    return queued


def _promote_one(schedule_id: uuid.UUID) -> int:
    with transaction.atomic():
        # The schedule's row lock serialises promoters of the same schedule
        # (several instances, a request): the checks below see each other's commits.
        schedule = Schedule.objects.select_for_update().filter(pk=schedule_id).first()
        if schedule is None:
            SlotRerun.objects.filter(schedule_id=schedule_id, status=SlotRerun.Status.WAITING).delete()
            return 0
        if JobExecution.objects.filter(schedule_id=schedule_id, status__in=ACTIVE).exists():
            return 0
        rerun = (SlotRerun.objects.filter(schedule_id=schedule_id, status=SlotRerun.Status.WAITING)
                 .order_by("scheduled_for").first())
        if rerun is None:
            return 0
        rerun.rerun_execution_id = queue_manual_run(
            schedule_id=schedule_id, domain=schedule.domain, domain_config_id=schedule.domain_config_id,
            requested_by=rerun.requested_by,
            metadata={"rerun_of": str(rerun.missed_execution_id), "rerun_slot": rerun.scheduled_for.isoformat()},
        )
        rerun.status = SlotRerun.Status.QUEUED
        rerun.save(update_fields=["rerun_execution_id", "status"])
        return 1


def _requeue_skipped() -> None:
    queued = SlotRerun.objects.filter(status=SlotRerun.Status.QUEUED)
    skipped = JobExecution.objects.filter(execution_id__in=queued.values("rerun_execution_id"),
                                          status=ExecutionStatus.SKIPPED)
    queued.filter(rerun_execution_id__in=list(skipped.values_list("execution_id", flat=True))).update(
        status=SlotRerun.Status.WAITING, rerun_execution_id=None)
