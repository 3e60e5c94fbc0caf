"""Claim: one INSERT per slot, unique on (schedule, scheduled_for), picks the instance that queues it.
With a free worker here the row is inserted already taken; past JOB_MISFIRE_GRACE_TIME it is missed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import DatabaseError

from history import services as history
from history.models import ExecutionStatus, ExecutionTrigger
from history.wording import duration_in_words
from scanner_project import metrics

from ..jobs import JobSpec
from .context import RunContext, log_extra, repair_connections
from .queue import enqueued

logger = logging.getLogger("schedules.runtime")

CLAIM_RETRY_FIRST = 0.25
CLAIM_RETRY_MAX = 5.0


def claim_with_retry(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *,
                     status: str = ExecutionStatus.QUEUED, now: datetime | None = None) -> uuid.UUID | None | bool:
    """The claim, retried with backoff while PostgreSQL is away, until the
    slot's grace time runs out. Returns the id, None (lost), or False (gave up)."""
    give_up_at = scheduled_for + timedelta(seconds=ctx.misfire_grace)
    wait = CLAIM_RETRY_FIRST
    while True:
        try:
            execution_id = history.claim_slot(
                schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                scheduled_for=scheduled_for, instance_id=ctx.instance_id, started_at=now or ctx.clock(),
                metadata={"fired_by": ctx.instance_id}, status=status,
            )
            ctx.db_outage.up()
            return execution_id
        except DatabaseError as exc:
            ctx.db_outage.down(exc, "slots are retried until their grace time runs out")
            repair_connections()
            if ctx.clock() + timedelta(seconds=wait) > give_up_at or ctx.stop.wait(wait):
                return False
            wait = min(wait * 2, CLAIM_RETRY_MAX)


def fire_slot(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *, gate: bool = True,
              fired_at: datetime | None = None) -> str | None:
    """Fire one slot: claim it as ``queued`` for any instance's workers, or
    straight into a free worker of this instance (``running``, taken at birth:
    no take, one write fewer per slot). Returns "running" or "queued" when
    this instance won the claim, "missed", or None.
    ``fired_at``: when the scheduler fired it (default: now), for the grace time."""
    reason = _too_late(ctx, spec, scheduled_for, fired_at=fired_at)
    if reason:
        # Fired this late (every instance was down, a second look after an
        # outage): grace is about firing; a queued slot never expires.
        logger.warning("Slot %s of %s not queued: %s", scheduled_for, spec.job_id, reason)
        try:
            history.record_unrun_slot(
                schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                scheduled_for=scheduled_for, instance_id=ctx.instance_id, reason=reason,
            )
        except DatabaseError as exc:
            ctx.db_outage.down(exc, "missed slots are only logged")
        return ExecutionStatus.MISSED
    if gate and ctx.slot_gate is not None and not ctx.redis_outage.is_down and not ctx.slot_gate.first(
        spec.schedule_id, scheduled_for, ctx.instance_id
    ):
        metrics.CLAIM_LOSSES.inc()
        ctx.lost_slots.note(spec, scheduled_for, fired_at or ctx.clock())
        return None
    seat = ctx.seats.reserve() if ctx.seats is not None else 0
    now = ctx.clock()
    status = ExecutionStatus.RUNNING if seat else ExecutionStatus.QUEUED
    claimed: uuid.UUID | None | bool = None
    try:
        claimed = claim_with_retry(ctx, spec, scheduled_for, status=status, now=now)
    finally:
        if seat and not isinstance(claimed, uuid.UUID):
            ctx.seats.unreserve()
    if claimed is False:
        logger.warning("Slot %s of %s missed: database unavailable past its grace time", scheduled_for,
                       spec.job_id, **log_extra(ctx, spec, scheduled_for=scheduled_for))
        return ExecutionStatus.MISSED
    if claimed is None:
        metrics.CLAIM_LOSSES.inc()
        logger.debug("Slot %s of %s claimed by another instance", scheduled_for, spec.job_id)
        return None
    enqueued(ctx, spec, scheduled_for, wake=not seat)
    if seat:
        ctx.seats.start({"execution_id": claimed, "schedule_id": spec.schedule_id, "scheduled_for": scheduled_for,
                         "trigger": ExecutionTrigger.SCHEDULED, "metadata": {"fired_by": ctx.instance_id},
                         "started_at": now, "created_at": now})
    return status


def _too_late(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *, fired_at: datetime | None = None) -> str:
    now = ctx.clock()
    late = (fired_at or now) - scheduled_for
    if late > timedelta(seconds=ctx.misfire_grace):
        return f"missed by {duration_in_words(late)}: later than the grace time"
    if ctx.coalesce:
        later = spec.trigger.get_next_fire_time(scheduled_for, scheduled_for + timedelta(microseconds=1))
        if later is not None and later <= now:
            return f"coalesced: the schedule's later slot {later.isoformat()} is already due"
    return ""
