"""Job store: APScheduler's MemoryJobStore, plus adding and removing a shard's jobs at once.
One sort and one scheduler wake-up per shard, where add_job costs a bisect, an insert, validation and a wake-up per job.
"""
# Jobs are built the way APScheduler's own persistent job stores rebuild
# theirs (Job.__setstate__), from a spec whose trigger is already validated.
# Every method takes the store's lock: bulk changes come from the shard
# keeper's thread while the scheduler's thread reads due jobs.

from __future__ import annotations

import threading
from datetime import datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.util import datetime_to_utc_timestamp

_NO_KWARGS: dict = {}  # shared: APScheduler never changes a job's kwargs


_NEVER = float("inf")


def _order(entry: tuple[Job, float | None]) -> tuple[float, str]:
    """MemoryJobStore's order: by next run time (none: last), then id."""
    timestamp = entry[1]
    return (_NEVER if timestamp is None else timestamp, entry[0].id)


class ShardJobStore(MemoryJobStore):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def build_job(self, scheduler: BaseScheduler, *, job_id: str, func_ref: str, trigger: BaseTrigger,
                  args: tuple, name: str, next_run_time: datetime, misfire_grace_time: float | None,
                  max_instances: int) -> Job:
        job = Job.__new__(Job)
        job.__setstate__({"version": 1, "id": job_id, "func": func_ref, "trigger": trigger, "executor": "default",
                          "args": args, "kwargs": _NO_KWARGS, "name": name, "misfire_grace_time": misfire_grace_time,
                          "coalesce": False, "max_instances": max_instances, "next_run_time": next_run_time})
        job._scheduler = scheduler
        job._jobstore_alias = "default"
        return job

    def add_jobs(self, jobs: list[Job]) -> None:
        entries = [(job, datetime_to_utc_timestamp(job.next_run_time)) for job in jobs]
        with self._lock:
            clashing = next((job.id for job in jobs if job.id in self._jobs_index), None)
            if clashing is not None:
                raise ConflictingIdError(clashing)
            self._jobs_index.update((entry[0].id, entry) for entry in entries)  # one tuple for both
            # Two sorted runs: Timsort merges them in linear time.
            self._jobs = sorted([*self._jobs, *sorted(entries, key=_order)], key=_order)

    def remove_jobs(self, job_ids: set[str]) -> None:
        with self._lock:
            self._jobs = [entry for entry in self._jobs if entry[0].id not in job_ids]
            for job_id in job_ids:
                self._jobs_index.pop(job_id, None)

    # MemoryJobStore's own methods, under the lock.
    def lookup_job(self, job_id):
        with self._lock:
            return super().lookup_job(job_id)

    def get_due_jobs(self, now):
        with self._lock:
            return super().get_due_jobs(now)

    def get_next_run_time(self):
        with self._lock:
            return super().get_next_run_time()

    def get_all_jobs(self):
        with self._lock:
            return super().get_all_jobs()

    def add_job(self, job):
        with self._lock:
            super().add_job(job)

    def update_job(self, job):
        with self._lock:
            super().update_job(job)

    def remove_job(self, job_id):
        with self._lock:
            super().remove_job(job_id)

    def remove_all_jobs(self):
        with self._lock:
            super().remove_all_jobs()
