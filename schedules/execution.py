"""One run of one slot: claim, lock, scan, record.

Every instance fires every slot; the INSERT of the slot's history row decides
which one runs it. The Redis lock then only keeps runs of the same schedule
from overlapping (a long scan still going when its next slot comes).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from history import services as history
from history.models import ExecutionStatus
from history.wording import duration_in_words
from scanner_project import metrics

from .jobs import JobSpec
from .locks import HeldLock, LockBackendDown, SlotGate
from .slot_check import LostSlotCheck
from .bookkeeping import ScheduleBookkeeping
from .runners import ScanRequest, run_with_retries
from .triggers import next_fire_times

logger = logging.getLogger("schedules.execution")

CLAIM_RETRY_FIRST = 0.25
CLAIM_RETRY_MAX = 5.0


class OutageLog:
    """Logs a warning when a dependency goes away and once when it is back:
    one line per outage, not one per run. While it is down, ``should_try``
    lets one caller probe it every PROBE_EVERY seconds; the others go straight
    to their fallback instead of each waiting out a socket timeout."""

    PROBE_EVERY = 2.0

    def __init__(self, name: str):
        self.name = name
        self._down = False
        self._last_probe = 0.0
        self._recovered_at = float("-inf")
        self._mutex = threading.Lock()

    def should_try(self) -> bool:
        if not self._down:
            return True
        with self._mutex:
            now = time.monotonic()
            if now - self._last_probe >= self.PROBE_EVERY:
                self._last_probe = now
                return True
        return False

    def down(self, error: BaseException, consequence: str) -> None:
        with self._mutex:
            self._last_probe = time.monotonic()
            first, self._down = not self._down, True
        if first:
            logger.warning("%s unavailable (%s); %s", self.name, error, consequence)

    def up(self) -> None:
        if self._down:
            with self._mutex:
                was, self._down = self._down, False
            if was:
                self._recovered_at = time.monotonic()
                logger.warning("%s is back", self.name)

    def recovered_within(self, seconds: float) -> bool:
        return time.monotonic() - self._recovered_at < seconds

    @property
    def is_down(self) -> bool:
        return self._down


@dataclass
class RunningScan:
    execution_id: uuid.UUID
    schedule_id: uuid.UUID
    lock: HeldLock | None


@dataclass
class RunContext:
    """What a slot run needs from its instance."""

    instance_id: str
    locks: object
    runner: Callable
    stop: threading.Event
    misfire_grace: float
    coalesce: bool
    retry_backoff: float
    stale_after: timedelta
    redis_outage: OutageLog
    db_outage: OutageLog
    slot_gate: SlotGate | None = None
    lost_slots: LostSlotCheck = field(default_factory=LostSlotCheck)
    bookkeeping: ScheduleBookkeeping = field(default_factory=ScheduleBookkeeping)
    running: dict[uuid.UUID, RunningScan] = field(default_factory=dict)
    running_mutex: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], datetime] = timezone.now


def _log_extra(ctx: RunContext, spec: JobSpec, execution_id=None, scheduled_for=None) -> dict:
    return {"extra": {"schedule_id": spec.schedule_id, "execution_id": execution_id,
                      "instance_id": ctx.instance_id, "scheduled_for": scheduled_for}}


def repair_connections() -> None:
    """After a database error: give back this thread's connection and have the
    pool drop every broken idle one (a restarted PostgreSQL breaks them all)."""
    close_old_connections()
    pool = getattr(connection, "pool", None) if connection.vendor == "postgresql" else None
    if pool is not None:
        try:
            pool.check()
        except Exception:  # noqa: BLE001 - the next claim retry reports the outage
            pass


def claim_with_retry(ctx: RunContext, spec: JobSpec, scheduled_for: datetime) -> uuid.UUID | None | bool:
    """The claim, retried with backoff while PostgreSQL is away, until the
    slot's grace time runs out. Returns the id, None (lost), or False (gave up)."""
    give_up_at = scheduled_for + timedelta(seconds=ctx.misfire_grace)
    wait = CLAIM_RETRY_FIRST
    while True:
        try:
            execution_id = history.claim_slot(
                schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                scheduled_for=scheduled_for, instance_id=ctx.instance_id, started_at=ctx.clock(),
            )
            ctx.db_outage.up()
            return execution_id
        except DatabaseError as exc:
            ctx.db_outage.down(exc, "slots are retried until their grace time runs out")
            repair_connections()
            if ctx.clock() + timedelta(seconds=wait) > give_up_at or ctx.stop.wait(wait):
                return False
            wait = min(wait * 2, CLAIM_RETRY_MAX)


def run_slot(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *, gate: bool = True) -> str | None:
    """Returns the final status of the run this instance made, or None."""
    reason = _too_late(ctx, spec, scheduled_for)
    if reason:
        # A slot that reaches a worker this late (a queue backlog, a second
        # look after an outage) would only overlap the schedule's next slot.
        logger.warning("Slot %s of %s not run: %s", scheduled_for, spec.job_id, reason)
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
        ctx.lost_slots.note(spec, scheduled_for)
        return None
    claimed = claim_with_retry(ctx, spec, scheduled_for)
    if claimed is False:
        logger.warning("Slot %s of %s missed: database unavailable past its grace time", scheduled_for,
                       spec.job_id, **_log_extra(ctx, spec, scheduled_for=scheduled_for))
        return ExecutionStatus.MISSED
    if claimed is None:
        metrics.CLAIM_LOSSES.inc()
        logger.debug("Slot %s of %s claimed by another instance", scheduled_for, spec.job_id)
        return None
    if _skipped_for_pause(ctx, spec, claimed, scheduled_for):
        return ExecutionStatus.SKIPPED
    metrics.SLOT_START_DELAY.observe(max((ctx.clock() - scheduled_for).total_seconds(), 0.0))
    return execute(ctx, spec, claimed, scheduled_for=scheduled_for, trigger="scheduled")


def _skipped_for_pause(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, scheduled_for: datetime) -> bool:
    """A paused schedule's claimed slot is recorded skipped with the pause's
    note. Checked after the claim: one query per slot, by the one instance
    that won it."""
    from pauses.selectors import paused_reason

    try:
        reason = paused_reason(schedule_id=spec.schedule_id, at=scheduled_for)
    except DatabaseError:
        return False  # unknown: run it rather than lose the slot
    if reason:
        logger.info("Slot %s of %s skipped: %s", scheduled_for, spec.job_id, reason,
                    **_log_extra(ctx, spec, execution_id, scheduled_for))
        _finish(ctx, spec, execution_id, ExecutionStatus.SKIPPED, ctx.clock(), error_message=reason,
                metadata={"instance_id": ctx.instance_id, "trigger": "scheduled", "reason": reason})
    return bool(reason)


def _too_late(ctx: RunContext, spec: JobSpec, scheduled_for: datetime) -> str:
    now = ctx.clock()
    if now - scheduled_for > timedelta(seconds=ctx.misfire_grace):
        return f"missed by {duration_in_words(now - scheduled_for)}: later than the grace time"
    if ctx.coalesce:
        later = spec.trigger.get_next_fire_time(scheduled_for, scheduled_for + timedelta(microseconds=1))
        if later is not None and later <= now:
            return f"coalesced: the schedule's later slot {later.isoformat()} is already due"
    return ""


def _take_lock(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID) -> tuple[bool, HeldLock | None, str]:
    """(may run, lock, reason). Without Redis, overlap is checked in the database."""
    try:
        if not ctx.redis_outage.should_try():
            raise LockBackendDown("still unavailable")
        held = ctx.locks.acquire(spec.schedule_id)
        if held is None and not history.has_live_run(
            schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id
        ):
            # The holder's run stopped beating (its process was killed): the
            # lock is stale, not busy.
            ctx.locks.break_stale(spec.schedule_id)
            held = ctx.locks.acquire(spec.schedule_id)
        ctx.redis_outage.up()
    except LockBackendDown as exc:
        ctx.redis_outage.down(exc, "running on the database claim alone")
        if history.has_live_run(schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id):
            return False, None, "a previous run of this schedule is still running (checked in the database)"
        return True, None, ""
    if held is None:
        return False, None, f"lock lock:schedule:{spec.schedule_id} is held: a previous run is still running"
    return True, held, ""


def execute(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID, *, scheduled_for, trigger: str,
            metadata: dict | None = None) -> str:
    started_at = ctx.clock()
    extra = _log_extra(ctx, spec, execution_id, scheduled_for)
    may_run, held, reason = _take_lock(ctx, spec, execution_id)
    metadata = {**(metadata or {}), "instance_id": ctx.instance_id, "trigger": trigger,
                "lock": ctx.locks.backend if held else "none"}
    if not may_run:
        metrics.LOCK_CONTENTION.inc()
        metadata["reason"] = reason
        _finish(ctx, spec, execution_id, ExecutionStatus.SKIPPED, started_at, metadata=metadata, error_message=reason)
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
            outcome = run_with_retries(runner=ctx.runner, request=request, max_retries=spec.max_retries,
                                       backoff=ctx.retry_backoff, stop=ctx.stop)
        finally:
            if held is not None:
                scan.lock = None
                ctx.locks.release(held)
        metadata["attempts"] = outcome.attempts
        if held is not None and held.lost:
            metrics.LOCKS_LOST.inc()
            metadata["lock_lost"] = held.lost_reason
        if outcome.result is not None:
            metadata.update(outcome.result.metadata)
            status = ExecutionStatus.SUCCESS
            _finish(ctx, spec, execution_id, status, started_at, metadata=metadata, scan_id=outcome.result.scan_id)
            logger.info("Finished %s for %s: success", spec.job_id, spec.domain, **extra)
        else:
            status = ExecutionStatus.FAILED
            _finish(ctx, spec, execution_id, status, started_at, metadata=metadata,
                    error_message=f"{type(outcome.error).__name__}: {outcome.error}",
                    error_details=outcome.error_details)
            logger.warning("Finished %s for %s: failed: %s", spec.job_id, spec.domain, outcome.error, **extra)
    finally:
        with ctx.running_mutex:
            ctx.running.pop(execution_id, None)
    return status


def _finish(ctx: RunContext, spec: JobSpec, execution_id, status, started_at, **fields) -> None:
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
    upcoming = next_fire_times(spec.trigger, count=1, now=now)
    return upcoming[0] if upcoming else None
