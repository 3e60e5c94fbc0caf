"""Job table: the schedules loaded into APScheduler, each with the snapshot (JobSpec) it was built from.
Changes are applied here in O(1) whatever the job count; the change feed only says what changed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime
from typing import Iterable

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from scanner_project import metrics
from schedules.runtime.specs import JobChange, JobSpec, change_for, fires_by_trigger

logger = logging.getLogger("schedules.runtime")


def _unused_job_function(**kwargs: object) -> None:
    """Jobs are run by fire.SlotExecutor, which hands their slots to the claim."""
    raise RuntimeError("schedule jobs run through SlotExecutor")


class JobTable:
    def __init__(self, *, scheduler: BaseScheduler, replace_existing: bool):
        self.scheduler = scheduler
        self.replace_existing = replace_existing
        self._specs: dict[uuid.UUID, JobSpec] = {}
        self._mutex = threading.RLock()

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, schedule_id: uuid.UUID) -> JobSpec | None:
        return self._specs.get(schedule_id)

    def spec_of_job(self, job: Job) -> JobSpec | None:
        return self._specs.get(job.kwargs["schedule_id"])

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

    def load(self, specs: Iterable[JobSpec], *, now: datetime) -> int:
        started = time.monotonic()
        specs = list(specs)
        first = fires_by_trigger(specs, lambda trigger: trigger.get_next_fire_time(None, now))
        # MemoryJobStore keeps jobs sorted by next fire time; adding them in
        # that order makes each insertion an append.
        keyed = sorted(((first[s.schedule_id], s) for s in specs if first[s.schedule_id] is not None),
                       key=lambda pair: pair[0])
        with self._mutex:
            for fire, spec in keyed:
                self._add(spec, next_run_time=fire, replace_existing=self.replace_existing)
        metrics.SCHEDULES_LOADED.set(len(self._specs))
        logger.info("Loaded %d enabled schedules in %.2f s", len(self._specs), time.monotonic() - started)
        return len(self._specs)

    def _add(self, spec: JobSpec, *, next_run_time: datetime | None = None, replace_existing: bool = True) -> None:
        kwargs = {"next_run_time": next_run_time} if next_run_time is not None else {}
        self.scheduler.add_job(_unused_job_function, trigger=spec.trigger, id=spec.job_id, name=spec.domain,
                               kwargs={"schedule_id": spec.schedule_id}, replace_existing=replace_existing, **kwargs)
        self._specs[spec.schedule_id] = spec

    def apply(self, change: JobChange, *, source: str) -> None:
        with self._mutex:
            if change.action == "remove":
                removed = self._specs.pop(change.schedule_id, None)
                if removed is not None:
                    try:
                        self.scheduler.remove_job(removed.job_id)
                    except JobLookupError:  # a once-job removes itself after its slot
                        pass
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
        """Bring one schedule's job in line with ``wanted`` (None: not enabled); True if it changed."""
        with self._mutex:
            change = change_for(self._specs.get(schedule_id), wanted)
            if change is not None:
                self.apply(change, source=source)
        return change is not None

    def loaded_jobs(self) -> dict[str, dict]:
        """Each loaded job's next fire time and snapshot hash (for status reports)."""
        jobs = {}
        for job in self.scheduler.get_jobs():
            spec = self.spec_of_job(job)
            jobs[str(job.kwargs["schedule_id"])] = {
                "next": job.next_run_time.isoformat() if job.next_run_time else None,
                "hash": spec.content_hash if spec else None,
            }
        return jobs
