"""Run: a worker runs the scan of a row it took and locked, with the schedule's current snapshot.
The scan is retried per maxRetries; the watchdog renews its lock and heartbeat meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django.db import DatabaseError, close_old_connections

from history import queue as queue_store
from history.models import ExecutionStatus
from scanner_project import metrics
from schedules.runtime.context import RunContext, RunningScan, log_extra
from schedules.runtime.finish import finish
from schedules.runtime.locks import HeldLock
from schedules.runtime.specs import JobSpec
from schedules.scans.request import ScanRequest
from schedules.scans.retries import error_message, run_with_retries

logger = logging.getLogger("schedules.runtime")


def run_scan(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, held: HeldLock | None, *,
             scheduled_for: datetime | None, trigger: str, metadata: dict, started_at: datetime) -> str:
    """Run the scan of a row whose lock is ``held`` (None: checked in the
    database), with retries, and record its outcome."""
    extra = log_extra(ctx, spec, execution_id, scheduled_for)
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
                                       backoff=ctx.config.retry_backoff, stop=ctx.stop)
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
        queue_store.touch_running(execution_ids=[s.execution_id for s in running], instance_id=ctx.instance_id)
    except DatabaseError as exc:
        ctx.db_outage.down(exc, "heartbeats resume when it returns")
