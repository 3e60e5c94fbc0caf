"""Fire: APScheduler fires each schedule's slots on every firing instance.
This executor names each job's slot (scheduled_for) and drops those fired past the grace time.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor

from history.wording import duration_in_words

logger = logging.getLogger("schedules.runtime")

# Below this, a slot fired early is run at once: timers are not worth it.
EARLY_TOLERANCE = 0.1


class SlotExecutor(ThreadPoolExecutor):
    """APScheduler 3 calls a job without the fire time it is running for. The claim
    must use that time (the trigger's slot), never the wall clock at which a
    worker thread happened to start, so this executor passes it as
    ``scheduled_for``. It also records the slots a run will not cover: misfired
    beyond the grace time, and coalesced, so gaps show in the history.

    Slots are due by the database's clock, the one all instances share. An
    instance whose own clock is ahead would otherwise claim (and run) each slot
    early, while the previous slot of the same schedule is still running
    elsewhere, which makes that run skip for an overlap. Such slots wait until
    they are due, on a timer that holds no worker and no APScheduler instance
    count (so the job's next fire is not refused as "max instances")."""

    def __init__(self, *, max_workers: int, coalesce: bool, on_slot, on_unrun_slot, clock=None, skew=None):
        super().__init__(max_workers=max_workers)
        # Seconds this process's clock is ahead of the database's.
        self.skew = skew or (lambda: 0.0)
        self.coalesce = coalesce
        self.on_slot = on_slot
        self.on_unrun_slot = on_unrun_slot
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def db_now(self) -> datetime:
        return self.clock() - timedelta(seconds=self.skew())

    def _do_submit_job(self, job, run_times):
        early = (min(run_times) - self.db_now()).total_seconds()
        if early > EARLY_TOLERANCE:
            self._run_job_success(job.id, [])
            timer = threading.Timer(early, self._submit_when_due, (job, list(run_times)))
            timer.daemon = True
            timer.start()
            return

        def done(future):
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        self._pool.submit(self._run_slots, job, list(run_times), self.db_now()).add_done_callback(done)

    def _submit_when_due(self, job, run_times: list[datetime]) -> None:
        try:
            future = self._pool.submit(self._run_slots, job, run_times, self.db_now())
        except RuntimeError:  # the pool was shut down: this instance is stopping
            return
        future.add_done_callback(
            lambda f: f.exception() and logger.error("Job %s failed", job.id, exc_info=f.exception()))

    def _run_slots(self, job, run_times: list[datetime], fired_at: datetime | None = None) -> None:
        """``fired_at``: when APScheduler handed the slots over. Grace counts
        to then: a herd waiting here for a free firing thread is not late."""
        fired_at = fired_at or self.db_now()
        # Coalescing happens here, not in APScheduler, so that the slots it
        # folds into one run are still recorded.
        if self.coalesce and len(run_times) > 1:
            for skipped in run_times[:-1]:
                self.on_unrun_slot(job, skipped, "coalesced: a later slot of the same schedule ran instead")
            run_times = run_times[-1:]
        for run_time in run_times:
            late = fired_at - run_time
            if job.misfire_grace_time is not None and late > timedelta(seconds=job.misfire_grace_time):
                self.on_unrun_slot(job, run_time, f"missed by {duration_in_words(late)}: later than the grace time")
                continue
            self.on_slot(job, run_time, fired_at)
