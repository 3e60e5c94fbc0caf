"""Run: a worker runs the scan of a row it took, with the schedule's current snapshot.
The scan is retried per maxRetries; the watchdog renews its lock and heartbeat meanwhile.
"""

from __future__ import annotations

import logging
import uuid

from django.db import DatabaseError, close_old_connections
from datetime import datetime
from typing import Callable

from history import services as history
from history.models import ExecutionStatus
from scanner_project import metrics

from schedules.hooks import pause_source
from schedules.runtime.specs import JobSpec
from schedules.scans.request import ScanRequest
from schedules.scans.retries import error_message, run_with_retries
from schedules.runtime.context import RunContext, RunningScan, log_extra
from schedules.runtime.finish import finish
from schedules.runtime.lock import take_lock

logger = logging.getLogger("schedules.runtime")


def run_taken(ctx: RunContext, row: dict, *, spec_of: Callable[[uuid.UUID], JobSpec | None]) -> str:
    """Run one row this instance took from the queue (history.take_queued)
    with the schedule's current snapshot."""
    execution_id, scheduled_for = row["execution_id"], row["scheduled_for"]
    try:
        spec = spec_of(row["schedule_id"])
        if ctx.stop.is_set():
            # Taken just as this instance began to stop: back to the queue,
            # for another instance; queued work is never interrupted.
            history.requeue(execution_ids=[execution_id], instance_id=ctx.instance_id)
            return ExecutionStatus.QUEUED
        if spec is None:
            history.finish_execution(execution_id=execution_id, status=ExecutionStatus.SKIPPED,
                                     started_at=row["started_at"], instance_id=ctx.instance_id,
                                     error_message="the schedule no longer exists or is disabled")
            return ExecutionStatus.SKIPPED
        if scheduled_for is not None:
            if _skipped_for_pause(ctx, spec, execution_id, scheduled_for):
                return ExecutionStatus.SKIPPED
            metrics.SLOT_START_DELAY.observe(max((row["started_at"] - scheduled_for).total_seconds(), 0.0))
        return execute(ctx, spec, execution_id, scheduled_for=scheduled_for, trigger=row["trigger"],
                       metadata=row["metadata"],
                       started_at=row["started_at"])
    finally:
        with ctx.running_mutex:
            ctx.running.pop(execution_id, None)


def execute(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, *, scheduled_for, trigger: str,
            metadata: dict | None = None, started_at: datetime | None = None) -> str:
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
    scan = RunningScan(execution_id, spec.schedule_id, held)
    with ctx.running_mutex:
        ctx.running[execution_id] = scan
    logger.info("Running %s for %s (slot %s)", spec.job_id, spec.domain, scheduled_for, **extra)
    # The run stays in ctx.running until its outcome is recorded, so the
    # watchdog keeps its heartbeat going while _finish waits out a database
    # outage, and a shutdown marks it interrupted rather than leaving it running.
    try:
        try:
            request = ScanRequest(
                schedule_id=spec.schedule_id, execution_id=execution_id, domain=spec.domain,
                domain_config_id=spec.domain_config_id, scheduled_for=scheduled_for,
                scan_settings=spec.scan_settings, trigger=trigger,
            )
            # The scan may take minutes: its pooled connection goes back
            # meanwhile, so connections follow database work, not scans.
            close_old_connections()
            outcome = run_with_retries(runner=ctx.runner, request=request, max_retries=spec.max_retries,
                                       backoff=ctx.retry_backoff, stop=ctx.stop)
        finally:
            if held is not None:
                with scan.mutex:
                    scan.lock = None
                ctx.locks.release(held)
        metadata["attempts"] = outcome.attempts
        if held is not None and held.lost:
            metrics.LOCKS_LOST.inc()
            metadata["lock_lost"] = held.lost_reason
        if outcome.result is not None:
            metadata.update(outcome.result.metadata)
            status = ExecutionStatus.SUCCESS
            finish(ctx, spec, execution_id, status, started_at, metadata=metadata, scan_id=outcome.result.scan_id)
            logger.info("Finished %s for %s: success", spec.job_id, spec.domain, **extra)
        else:
            status = ExecutionStatus.FAILED
            finish(ctx, spec, execution_id, status, started_at, metadata=metadata,
                    error_message=error_message(outcome.error),
                    error_details=outcome.error_details)
            logger.warning("Finished %s for %s: failed: %s", spec.job_id, spec.domain, error_message(outcome.error),
                           **extra)
    finally:
        with ctx.running_mutex:
            ctx.running.pop(execution_id, None)
    return status


def renew_running(ctx: RunContext) -> None:
    """The watchdog's pass: renew the lock and heartbeat of every scan running
    here, so a scan of any length keeps its lock."""
    with ctx.running_mutex:
        running = list(ctx.running.values())
    for scan in running:
        with scan.mutex:  # the finishing worker sets scan.lock to None under it, then releases
            held = scan.lock
            if held is not None and not ctx.locks.renew(held):
                logger.warning("Lost lock of schedule %s while its scan runs: %s", scan.schedule_id, held.lost_reason)
    try:
        history.touch_running(execution_ids=[s.execution_id for s in running], instance_id=ctx.instance_id)
    except DatabaseError as exc:
        ctx.db_outage.down(exc, "heartbeats resume when it returns")


def _skipped_for_pause(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, scheduled_for: datetime) -> bool:
    """A paused schedule's slot is recorded skipped with the pause's note.
    Checked when a worker takes it, by the one instance that took it; a query
    only for the schedules the instance's pause snapshot names. The pause
    source is the pause app's (schedules.hooks): without one, none is paused."""
    seen = ctx.pauses
    if seen is not None and ctx.clock() - seen.taken_at <= ctx.pauses_max_age and not seen.may_hold(
            schedule_id=spec.schedule_id, at=scheduled_for):
        return False  # no pause can hold it: no query (see see_pauses)
    try:
        reason = pause_source().reason(schedule_id=spec.schedule_id, at=scheduled_for)
    except DatabaseError:
        return False  # unknown: run it rather than lose the slot
    if reason:
        logger.info("Slot %s of %s skipped: %s", scheduled_for, spec.job_id, reason,
                    **log_extra(ctx, spec, execution_id, scheduled_for))
        finish(ctx, spec, execution_id, ExecutionStatus.SKIPPED, ctx.clock(), error_message=reason,
               metadata={"instance_id": ctx.instance_id, "trigger": "scheduled", "reason": reason})
    return bool(reason)


def see_pauses(ctx: RunContext) -> None:
    """Refresh the snapshot of schedules that a pause may hold (the tick runs
    it every CHANGE_POLL_INTERVAL); a stale one is not trusted."""
    ctx.pauses = pause_source().snapshot(now=ctx.clock())
