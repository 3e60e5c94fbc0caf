"""Take: a taker thread per instance takes the oldest queued rows for its free workers.
A taken row's schedule snapshot and pauses are checked, then it goes to the lock; the taker polls for others' rows.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable

from django.db import DatabaseError
from django_apscheduler.util import close_old_connections as with_fresh_connections

from history import queue as queue_store
from history import services as history
from history.models import ExecutionStatus
from scanner_project import metrics
from schedules.hooks import pause_source
from schedules.runtime.context import RunContext, RunningScan, log_extra
from schedules.runtime.finish import finish
from schedules.runtime.lock import run_locked
from schedules.runtime.specs import JobSpec, load_specs

logger = logging.getLogger("schedules.runtime")

POLL_SECONDS = 0.25


class QueueTaker:
    def __init__(self, *, ctx: RunContext, max_workers: int, spec_of: Callable[[uuid.UUID], JobSpec | None],
                 poll: float = POLL_SECONDS):
        self.ctx = ctx
        self.max_workers = max_workers
        self.spec_of = spec_of
        self.poll = poll
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="scan")
        self._in_flight = 0  # reserved workers: running a row, or about to
        self._mutex = threading.Lock()

    def reserve(self, count: int = 1) -> int:
        """Hold up to ``count`` free workers (how many it got). Every start
        goes through a reservation, so takes and claims (claim.py) together
        never start more scans than there are workers."""
        with self._mutex:
            got = 0 if self.ctx.stop.is_set() else max(min(count, self.max_workers - self._in_flight), 0)
            self._in_flight += got
        return got

    def unreserve(self, count: int = 1) -> None:
        if count:
            with self._mutex:
                self._in_flight -= count

    def take_once(self) -> int:
        """One pass: take up to the free workers' worth of rows and start them."""
        seats = self.reserve(self.max_workers)
        if not seats:
            return 0
        rows: list[dict] = []
        try:
            rows = queue_store.take_queued(instance_id=self.ctx.instance_id, limit=seats, now=self.ctx.clock())
            with_specs(rows)
        finally:
            self.unreserve(seats - len(rows))
        for row in rows:
            self.start(row)
        return len(rows)

    def start(self, row: dict) -> None:
        """Start a row taken for a reserved worker (by take_once, or claimed
        already taken by claim.fire_slot)."""
        self._register(row)
        self.pool.submit(with_fresh_connections(self._run), row).add_done_callback(self._done)

    def _run(self, row: dict) -> None:
        """Run the row, then go on taking one row at a time while the queue has
        any: a busy queue costs no hand-over to the taker thread per slot."""
        while row is not None:
            run_taken(self.ctx, row, spec_of=self.spec_of)
            if self.ctx.stop.is_set():
                return
            taken = queue_store.take_queued(instance_id=self.ctx.instance_id, limit=1, now=self.ctx.clock())
            row = taken[0] if taken else None
            if row is not None:
                self._register(row)

    def _register(self, row: dict) -> None:
        # Before its scan starts, so that a shutdown waits for it and the
        # watchdog keeps its heartbeat.
        with self.ctx.running_mutex:
            self.ctx.running[row["execution_id"]] = RunningScan(row["execution_id"], row["schedule_id"], None)

    def _done(self, future) -> None:
        self.unreserve()
        self.ctx.queue_wake.set()  # a worker is free again
        if future.exception() is not None:
            logger.error("A queued run failed outside its scan", exc_info=future.exception())

    def run_until_stopped(self, one_pass: Callable[[str, Callable], bool]) -> None:
        """The taker loop; ``one_pass`` (loops.Loops.one_pass) keeps a
        failing pass from ending it."""
        while not self.ctx.stop.is_set():
            self.ctx.queue_wake.clear()
            one_pass("queue-taker", self.take_once)
            self.ctx.queue_wake.wait(self.poll)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False)


def with_specs(rows: list[dict]) -> None:
    """Each row's schedule snapshot, settings included, read for all the
    rows started together in one query (``row["spec"]``; None: gone or
    disabled). Read as the rows start, so each run has the current settings."""
    if rows:
        specs = load_specs([row["schedule_id"] for row in rows])
        for row in rows:
            row["spec"] = specs.get(row["schedule_id"])


def run_taken(ctx: RunContext, row: dict, *, spec_of: Callable[[uuid.UUID], JobSpec | None]) -> str:
    """Run one row this instance took from the queue (queue_store.take_queued)
    with the schedule's current snapshot (read with the row, or now)."""
    execution_id, scheduled_for = row["execution_id"], row["scheduled_for"]
    try:
        spec = row["spec"] if "spec" in row else spec_of(row["schedule_id"])
        if ctx.stop.is_set():
            # Taken just as this instance began to stop: back to the queue,
            # for another instance; queued work is never interrupted.
            queue_store.requeue(execution_ids=[execution_id], instance_id=ctx.instance_id)
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
        return run_locked(ctx, spec, execution_id, scheduled_for=scheduled_for, trigger=row["trigger"],
                       metadata=row["metadata"],
                       started_at=row["started_at"])
    finally:
        with ctx.running_mutex:
            ctx.running.pop(execution_id, None)


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
