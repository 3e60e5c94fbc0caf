"""Job table: the schedules of the held shards loaded into APScheduler, each with the spec it was built from.
Changes are applied here in O(1) whatever the job count; the change feed only says what changed.
"""

from __future__ import annotations

import gc
import inspect
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from scanner_project import metrics
from schedules.models import SHARD_COUNT
from schedules.runtime.job_store import ShardJobStore
from schedules.runtime.specs import FirstFires, JobChange, JobSpec, change_for, specs_to_load

logger = logging.getLogger("schedules.runtime")


def _unused_job_function(*args: object) -> None:
    """Jobs are run by fire.SlotExecutor, which hands their slots to the claim."""
    raise RuntimeError("schedule jobs run through SlotExecutor")


# APScheduler checks a job's function against its arguments with
# inspect.signature at every add_job: a stored signature makes that a lookup
# (a third of the time it took to add 250,000 jobs).
_unused_job_function.__signature__ = inspect.signature(_unused_job_function)  # type: ignore[attr-defined]
# One reference string for every job (APScheduler would build one per job).
JOB_FUNCTION = f"{__name__}:{_unused_job_function.__name__}"


@contextmanager
def _bulk_allocation():
    """No cyclic garbage collection while a shard's 4,000 jobs are built, and
    the objects that exist afterwards (the jobs, mostly) frozen out of later
    collections: each full collection walks every tracked object, so with
    250,000 jobs loaded they made a fifth of the load time, and would make
    the pauses of every full collection after it."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


class JobTable:
    """The jobs of the shards this instance holds (``held``): only they are
    loaded, and a change to a schedule of another shard is not applied here."""

    def __init__(self, *, scheduler: BaseScheduler, store: ShardJobStore, replace_existing: bool,
                 misfire_grace: float | None = None, max_instances: int = 1):
        """``store``: the scheduler's default job store; ``misfire_grace`` and
        ``max_instances``: the scheduler's job defaults (a shard's jobs are
        added to the store at once, not through add_job)."""
        self.scheduler = scheduler
        self.store = store
        self.replace_existing = replace_existing
        self.misfire_grace = misfire_grace
        self.max_instances = max_instances
        self._specs: dict[uuid.UUID, JobSpec] = {}
        self.held: frozenset[int] = frozenset()
        self._first_fires = FirstFires()
        self._mutex = threading.RLock()

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, schedule_id: uuid.UUID) -> JobSpec | None:
        return self._specs.get(schedule_id)

    def spec_of_job(self, job: Job) -> JobSpec | None:
        return self._specs.get(job.args[0])

    def spec_of_job_id(self, job_id: str) -> JobSpec | None:
        job = self.scheduler.get_job(job_id)
        return self.spec_of_job(job) if job is not None else None

    def specs(self) -> list[JobSpec]:
        with self._mutex:
            return list(self._specs.values())

    def digests(self) -> dict[uuid.UUID, str]:
        """Each loaded schedule's row digest (specs.row_digest), for the full diff."""
        with self._mutex:
            return {sid: spec.row_hash for sid, spec in self._specs.items()}

    def held_shards(self) -> list[int] | None:
        """The shards held, for a query's filter; None when all are (no filter needed)."""
        held = self.held
        return None if len(held) == SHARD_COUNT else sorted(held)

    # --- shards -----------------------------------------------------------
    def load_shards(self, catch_up_from: dict[int, datetime], *, now: datetime) -> list[JobSpec]:
        """Hold these shards and load their schedules. ``catch_up_from``: per
        shard, the earliest slot still fired (shard_leases.catch_up_from).
        Each schedule's first fire is its first slot since then (not before
        it was created): a slot that fell due meanwhile fires at once, and
        SlotExecutor applies the grace time and coalescing as to any late
        slot, while the claim drops any slot the last owner did claim.
        (A stored next_run cannot say which slots the last owner fired: a
        run finishing elsewhere writes the first slot after its own end.)
        Returns the specs loaded."""
        started = time.monotonic()
        with self._mutex:
            self.held = self.held | catch_up_from.keys()
        with _bulk_allocation():
            return self._load(catch_up_from, now=now, started=started)

    def _load(self, catch_up_from: dict[int, datetime], *, now: datetime, started: float) -> list[JobSpec]:
        loaded = list(specs_to_load(shards=sorted(catch_up_from), created_after=min(catch_up_from.values())))
        first = {spec.schedule_id: self._first_fires.at_or_after(
                     spec, max(catch_up_from[spec.shard], created_at or catch_up_from[spec.shard]))
                 for spec, created_at in loaded}
        keyed = [(first[s.schedule_id], s) for s, _ in loaded if first[s.schedule_id] is not None]
        with self._mutex:
            # A change notice applied while the rows were read is newer.
            fresh = [(fire, spec) for fire, spec in keyed
                     if spec.shard in self.held and spec.schedule_id not in self._specs]
            self.store.add_jobs([self.store.build_job(
                self.scheduler, job_id=spec.job_id, func_ref=JOB_FUNCTION, trigger=spec.trigger,
                args=(spec.schedule_id,), name=spec.domain, next_run_time=fire, misfire_grace_time=self.misfire_grace,
                max_instances=self.max_instances) for fire, spec in fresh])
            self._specs.update((spec.schedule_id, spec) for _, spec in fresh)
            metrics.SCHEDULES_LOADED.set(len(self._specs))
        if fresh and self.scheduler.running:
            self.scheduler.wakeup()  # the first fire may be sooner than any before
        logger.info("Added %d job(s) of %d shard(s) in %.2f s (%d jobs in all)", len(keyed),
                    len(catch_up_from), time.monotonic() - started, len(self._specs))
        return [spec for _, spec in keyed]

    def drop_shards(self, shards: set[int]) -> int:
        """Stop holding these shards: their jobs are removed (another instance fires them)."""
        with self._mutex:
            self.held = self.held - shards
            gone = [spec for spec in self._specs.values() if spec.shard in shards]
            self.store.remove_jobs({spec.job_id for spec in gone})
            for spec in gone:
                del self._specs[spec.schedule_id]
            metrics.SCHEDULES_LOADED.set(len(self._specs))
        if gone:
            logger.info("Dropped %d job(s) of %d shard(s) no longer held here", len(gone), len(shards))
        return len(gone)

    # --- changes ----------------------------------------------------------
    def _add(self, spec: JobSpec, *, next_run_time: datetime | None = None, replace_existing: bool = True) -> None:
        kwargs = {"next_run_time": next_run_time} if next_run_time is not None else {}
        # The schedule id as the job's one argument: a tuple is lighter than kwargs' dict.
        self.scheduler.add_job(JOB_FUNCTION, trigger=spec.trigger, id=spec.job_id, name=spec.domain,
                               args=(spec.schedule_id,), replace_existing=replace_existing, **kwargs)
        self._specs[spec.schedule_id] = spec

    def _remove(self, spec: JobSpec) -> None:
        self._specs.pop(spec.schedule_id, None)
        try:
            self.scheduler.remove_job(spec.job_id)
        except JobLookupError:  # a once-job removes itself after its slot
            pass

    def apply(self, change: JobChange, *, source: str) -> None:
        with self._mutex:
            if change.action == "remove":
                removed = self._specs.get(change.schedule_id)
                if removed is not None:
                    self._remove(removed)
            elif change.action == "add":
                self._add(change.spec)
            elif change.action == "reschedule":
                if self.scheduler.get_job(change.spec.job_id) is None:  # a once-job that already ran
                    self._add(change.spec)
                else:
                    self.scheduler.reschedule_job(change.spec.job_id, trigger=change.spec.trigger)
                    self._specs[change.schedule_id] = change.spec
            else:  # refresh: same trigger, only the snapshot changes; the next fire stays
                self._specs[change.schedule_id] = change.spec
            metrics.SCHEDULES_LOADED.set(len(self._specs))
        metrics.CHANGES_APPLIED.labels(action=change.action, source=source).inc()
        logger.info("Applied %s of schedule %s (%s)", change.action, change.schedule_id, source)

    def apply_spec(self, schedule_id: uuid.UUID, wanted: JobSpec | None, *, source: str) -> bool:
        """Bring one schedule's job in line with ``wanted`` (None: not
        enabled); True if it changed. Only the owner of a schedule's shard
        loads it: elsewhere ``wanted`` counts as not enabled."""
        with self._mutex:
            if wanted is not None and wanted.shard not in self.held:
                wanted = None
            if wanted is not None and wanted.scan_settings is not None:
                wanted = replace(wanted, scan_settings=None)  # read when a slot runs, never kept
            change = change_for(self._specs.get(schedule_id), wanted)
            if change is not None:
                self.apply(change, source=source)
        return change is not None

    def loaded_jobs(self) -> dict[str, dict]:
        """Each loaded job's next fire time and snapshot hash (for status reports)."""
        jobs = {}
        for job in self.scheduler.get_jobs():
            spec = self.spec_of_job(job)
            jobs[str(job.args[0])] = {
                "next": job.next_run_time.isoformat() if job.next_run_time else None,
                "hash": spec.row_hash if spec else None,
            }
        return jobs
