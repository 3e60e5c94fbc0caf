"""Finish: a run's outcome goes to its row (retried through an outage), then to its schedule's bookkeeping.
Rows whose instance died go back to the queue; scans cut off by a shutdown are handed back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.db import DatabaseError

from history import queue as queue_store
from history import services as history
from history.models import ExecutionStatus
from scanner_project import metrics
from schedules.models import Schedule
from schedules.runtime.context import RunContext, RunningScan
from schedules.runtime.outages import repair_connections
from schedules.runtime.specs import JobSpec

logger = logging.getLogger("schedules.runtime")


def finish(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, status: str, started_at: datetime,
           **fields: object) -> None:
    completed_at = ctx.clock()
    for attempt in range(20):
        try:
            written = history.finish_execution(execution_id=execution_id, status=status, started_at=started_at,
                                               completed_at=completed_at, instance_id=ctx.instance_id, **fields)
            if written:
                ctx.bookkeeping.note(schedule_id=spec.schedule_id, last_run=started_at, last_status=status,
                                     next_run=_next_run(spec, ctx.clock()))
            break
        except DatabaseError as exc:
            # The scan is done; losing its record would hide it. Keep trying a
            # while (the row stays `running` and is marked abandoned otherwise).
            ctx.db_outage.down(exc, "finished runs are recorded when it returns")
            repair_connections()
            if ctx.stop.wait(min(0.5 * 2**attempt, 5.0)) and attempt > 3:
                return
    metrics.EXECUTIONS.labels(status=status, trigger=fields.get("metadata", {}).get("trigger", "scheduled")).inc()
    if status in (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED):
        metrics.EXECUTION_DURATION.observe(max((completed_at - started_at).total_seconds(), 0.0))


def _next_run(spec: JobSpec, now: datetime) -> datetime | None:
    return Schedule.next_run_after(spec.trigger, now=now)


def sweep_abandoned(ctx: RunContext) -> None:
    """Running rows whose heartbeat stopped (their instance died) go back to
    the queue, or are recorded abandoned once out of deliveries."""
    if ctx.db_outage.recovered_within(ctx.config.heartbeat_interval * 2):
        return  # every heartbeat is stale right after an outage; let them renew first
    requeued, abandoned = queue_store.rescue_orphaned(stale_after=ctx.stale_after, max_deliveries=ctx.config.max_deliveries)
    if requeued:
        logger.warning("Put %d run(s) back in the queue: their instance stopped sending heartbeats", requeued)
        ctx.queue_wake.set()
    if abandoned:
        logger.warning("Marked %d execution(s) abandoned: their instances stopped sending heartbeats %d times",
                       abandoned, ctx.config.max_deliveries)


def hand_back_cut_off(ctx: RunContext, scans: list[RunningScan]) -> None:
    """At shutdown, the scans that outlasted the grace time: delivered again
    elsewhere (same Idempotency-Key), as after a crash, while deliveries last;
    interrupted once out of them. Their locks are let go."""
    try:
        if scans:
            ids = [scan.execution_id for scan in scans]
            requeued = queue_store.requeue(execution_ids=ids, instance_id=ctx.instance_id, started=True,
                                           max_deliveries=ctx.config.max_deliveries)
            interrupted = queue_store.mark_interrupted(
                execution_ids=ids, instance_id=ctx.instance_id,
                reason="the scheduler instance shut down before the scan finished")
            logger.warning("%d running scan(s) outlasted the shutdown grace time: %d put back in the queue, "
                           "%d interrupted (out of deliveries)", len(scans), requeued, interrupted)
    finally:
        for scan in scans:
            if scan.lock is not None:
                ctx.locks.release(scan.lock)
