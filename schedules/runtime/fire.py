"""Fire: APScheduler fires each schedule's slots on every firing instance.
The executor names each job's slot (scheduled_for), applies due.verdict, and hands the slot to the claim.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.events import JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from django_apscheduler.util import close_old_connections as with_fresh_connections

from schedules.runtime import due
from schedules.runtime.bookkeeping import record_not_run
from schedules.runtime.claim import FiredSlot, SlotClaimer, fire_slot
from schedules.runtime.context import RunContext
from schedules.runtime.job_table import JobTable

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

    def __init__(self, *, max_workers: int, coalesce: bool, on_slot: Callable[[Job, datetime, datetime], None],
                 on_unrun_slot: Callable[[Job, datetime, str], None], clock: Callable[[], datetime] | None = None,
                 skew: Callable[[], float] | None = None):
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
        # By this host's clock all of run_times are due; by the database's,
        # those ahead of it are not, and wait (a clock ahead by more than an
        # interval hands over a slot that is due with one that is not).
        run_times = self._hold_early(job, run_times)
        if not run_times:
            self._run_job_success(job.id, [])
            return

        def done(future):
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, [])

        self._pool.submit(self._run_slots, job, list(run_times), self.db_now()).add_done_callback(done)

    def _hold_early(self, job, run_times: list[datetime]) -> list[datetime]:
        """The slots due by the database's clock; the others wait on a timer
        until the first of them is due, then are split again."""
        now = self.db_now()
        early = sorted(t for t in run_times if (t - now).total_seconds() > EARLY_TOLERANCE)
        if early:
            timer = threading.Timer((early[0] - now).total_seconds(), self._submit_when_due, (job, early))
            timer.daemon = True
            timer.start()
        return [t for t in run_times if t not in early]

    def _submit_when_due(self, job, run_times: list[datetime]) -> None:
        run_times = self._hold_early(job, run_times)
        if not run_times:
            return
        try:
            future = self._pool.submit(self._run_slots, job, run_times, self.db_now())
        except RuntimeError:  # the pool was shut down: this instance is stopping
            return
        future.add_done_callback(
            lambda f: f.exception() and logger.error("Job %s failed", job.id, exc_info=f.exception()))

    def _run_slots(self, job: Job, run_times: list[datetime], fired_at: datetime | None = None) -> None:
        """``fired_at``: when APScheduler handed the slots over. Grace counts
        to then: a herd waiting here for a free firing thread is not late."""
        fired_at = fired_at or self.db_now()
        grace = job.misfire_grace_time if job.misfire_grace_time is not None else float("inf")
        ordered = sorted(run_times)
        # Coalescing happens here, not in APScheduler, so that the slots it
        # folds into one run are still recorded: each slot's later slot is the
        # next one of this batch (all of them due when they were handed over).
        for slot, later in zip(ordered, [*ordered[1:], None], strict=True):
            decided = due.verdict(slot=slot, fired_at=fired_at, now=fired_at, grace=grace, coalesce=self.coalesce,
                                  later_slot=later)
            if decided.run:
                self.on_slot(job, slot, fired_at)
            else:
                self.on_unrun_slot(job, slot, decided.reason)


class FiredSlots:
    """Where the executor's slots go: each fired slot of a loaded job to the
    claim, each slot it will not run to the history, and each slot refused as
    "max instances" (this instance still runs the schedule) to a second look,
    since another instance may be free to run it."""

    def __init__(self, *, ctx: RunContext, jobs: JobTable, claimer: SlotClaimer):
        self.ctx = ctx
        self.jobs = jobs
        self.claimer = claimer

    def on_slot(self, job: Job, scheduled_for: datetime, fired_at: datetime) -> None:
        if self.ctx.stop.is_set():
            return  # not claimed: another instance runs it
        spec = self.jobs.spec_of_job(job)
        if spec is not None:
            self.claimer.submit(FiredSlot(spec, scheduled_for, fired_at))

    def on_unrun_slot(self, job: Job, scheduled_for: datetime, reason: str) -> None:
        spec = self.jobs.spec_of_job(job)
        if spec is not None:
            # On a firing thread, which otherwise never touches the database:
            # its connection goes back to the pool at once.
            with_fresh_connections(record_not_run)(
                schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                scheduled_for=scheduled_for, instance_id=self.ctx.instance_id, reason=reason,
                outage=self.ctx.db_outage)

    def on_max_instances(self, event: JobSubmissionEvent) -> None:
        spec = self.jobs.spec_of_job_id(event.job_id)
        if spec is not None:
            for run_time in event.scheduled_run_times:
                self.ctx.lost_slots.note(spec, run_time, self.ctx.clock())

    def claim_lost_slots(self, submit: Callable[..., object]) -> None:
        """The second look: noted slots that still have no row are fired here
        (``submit``: onto a firing thread); the claim decides whether they are
        still in time (due.verdict), counting grace to when they were fired."""
        for spec, slot, fired_at in self.ctx.lost_slots.unclaimed():
            logger.info("Slot %s of %s was not claimed by any instance; claiming it here", slot, spec.job_id)
            submit(with_fresh_connections(fire_slot), self.ctx, spec, slot, fired_at=fired_at)
