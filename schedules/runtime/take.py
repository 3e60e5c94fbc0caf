"""Take: a taker thread per instance takes the oldest queued rows for its free workers.
It wakes when this instance queued a slot or a worker finished, and polls for the others'.
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from django_apscheduler.util import close_old_connections as with_fresh_connections

from history import queue as queue_store
from schedules.runtime.specs import JobSpec
from schedules.runtime.context import RunContext, RunningScan
from schedules.runtime.run import run_taken

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
