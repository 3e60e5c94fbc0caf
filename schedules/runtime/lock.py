"""Lock: a taken slot runs only while no other run of its schedule does (a lock per schedule, locks.py).
Without Redis, or while it is down, overlap is checked against the running rows in the database.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from history import queue as queue_store
from history.models import ExecutionStatus
from scanner_project import metrics
from schedules.runtime.context import RunContext, log_extra
from schedules.runtime.finish import finish
from schedules.runtime.locks import HeldLock, LockBackendDown, lock_key
from schedules.runtime.run import run_scan
from schedules.runtime.specs import JobSpec

logger = logging.getLogger("schedules.runtime")


def run_locked(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, *, scheduled_for: datetime | None,
               trigger: str, metadata: dict | None = None, started_at: datetime | None = None) -> str:
    """Take the schedule's lock and run the scan under it (run.run_scan), or
    record the slot skipped: a previous run of the schedule is still going."""
    started_at = started_at or ctx.clock()
    extra = log_extra(ctx, spec, execution_id, scheduled_for)
    may_run, held, reason = take_lock(ctx, spec, execution_id)
    metadata = {**(metadata or {}), "instance_id": ctx.instance_id, "trigger": trigger,
                "lock": ctx.locks.backend if held else "none"}
    if not may_run:
        metrics.LOCK_CONTENTION.inc()
        metadata["reason"] = reason
        finish(ctx, spec, execution_id, ExecutionStatus.SKIPPED, started_at, metadata=metadata, error_message=reason)
        logger.info("Skipped %s for %s: %s", spec.job_id, spec.domain, reason, **extra)
        return ExecutionStatus.SKIPPED
    return run_scan(ctx, spec, execution_id, held, scheduled_for=scheduled_for, trigger=trigger, metadata=metadata,
                    started_at=started_at)


def take_lock(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID) -> tuple[bool, HeldLock | None, str]:
    """(may run, lock, reason). Without Redis, overlap is checked in the database."""
    try:
        if not ctx.redis_outage.should_try():
            raise LockBackendDown("still unavailable")
        held = ctx.locks.acquire(spec.schedule_id)
        if held is None and not queue_store.has_live_run(
            schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id
        ):
            # The holder's run stopped beating (its process was killed): the
            # lock is stale, not busy.
            ctx.locks.break_stale(spec.schedule_id)
            held = ctx.locks.acquire(spec.schedule_id)
        ctx.redis_outage.up()
    except LockBackendDown as exc:
        ctx.redis_outage.down(exc, "running on the database claim alone")
        if queue_store.has_live_run(schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id):
            return False, None, "a previous run of this schedule is still running (checked in the database)"
        return True, None, ""
    if held is None:
        return False, None, f"lock {lock_key(spec.schedule_id)} is held: a previous run is still running"
    return True, held, ""
