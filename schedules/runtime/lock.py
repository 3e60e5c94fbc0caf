"""Lock: a taken slot runs only while no other run of its schedule does (a lock per schedule, locks.py).
Without Redis, or while it is down, overlap is checked against the running rows in the database.
"""

from __future__ import annotations

import uuid

from history import queue as queue_store

from schedules.runtime.context import RunContext
from schedules.runtime.locks import HeldLock, LockBackendDown, lock_key
from schedules.runtime.specs import JobSpec


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
