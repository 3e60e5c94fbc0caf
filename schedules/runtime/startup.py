"""Start-up: what a firing instance writes for each shard it takes, after loading its jobs.
The slots missed while no instance fired them (the catch-up's records), and each schedule's next_run.
"""
# Written shard by shard, in batches, by one thread that stops between
# batches when the instance stops: the writes are idempotent, and the
# shard's next owner writes whatever was left.

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, close_old_connections

from schedules.models import Schedule
from schedules.runtime.bookkeeping import record_not_run, update_schedule_columns
from schedules.runtime.specs import JobSpec, fires_by_trigger

logger = logging.getLogger("schedules.runtime")

DOWNTIME_REASON = "no scheduler instance was running at this time (this and any later slots until the restart)"
WRITE_BATCH = 1000


@dataclass(frozen=True)
class ShardRecords:
    """What to write for shards just taken: the specs loaded, as of ``now``."""

    shards: list[int]
    specs: list[JobSpec]
    now: datetime


class StartupWrites:
    """The writes of taken shards, in the order taken, on one thread. ``stop``
    is set at the end of the shutdown's grace time, not at its start: a
    stop right after start still writes what it can meanwhile."""

    def __init__(self, *, instance_id: str, grace: float, stop: threading.Event):
        self.instance_id = instance_id
        self.grace = grace
        self.stop = stop
        self._todo: queue.Queue[ShardRecords] = queue.Queue()

    def add(self, records: ShardRecords) -> None:
        self._todo.put(records)

    def idle(self) -> bool:
        return self._todo.unfinished_tasks == 0  # none waiting, none being written

    def run_until_stopped(self) -> None:
        """The writer loop (a loop of loops.Loops)."""
        while not self.stop.is_set():
            try:
                records = self._todo.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self.write(records)
            finally:
                self._todo.task_done()
                close_old_connections()

    def write(self, records: ShardRecords) -> bool:
        """True if all of it was written (False: stopped, or the database is away)."""
        done = record_downtime_misses(instance_id=self.instance_id, grace=self.grace, now=records.now,
                                      shards=records.shards, stop=self.stop)
        # Computed here, off the shard keeper's thread: taking shards is what holds up firing.
        fires = next_runs(specs=records.specs, now=records.now)
        done = done and write_next_runs(fires=fires, shards=records.shards, now=records.now,
                                        grace=self.grace, stop=self.stop)
        if done:
            logger.info("Start-up records written for %d shard(s): missed slots and %d next run times",
                        len(records.shards), len(fires))
        return done


def record_downtime_misses(*, instance_id: str, grace: float, now: datetime, shards: list[int] | None = None,
                           stop: threading.Event | None = None) -> bool:
    """Slots that passed while no instance fired them (beyond the grace
    time) are recorded as missed, so the gap shows in the history. False if
    stopped before the end."""
    cutoff = now - timedelta(seconds=grace)
    overdue = Schedule.objects.filter(enabled=True, next_run__lt=cutoff)
    if shards is not None:
        overdue = overdue.filter(shard__in=shards)
    recorded = 0
    try:
        rows = overdue.values_list("schedule_id", "domain", "domain_config_id", "next_run")
        for n, (schedule_id, domain, config_id, slot) in enumerate(rows.iterator(chunk_size=WRITE_BATCH)):
            if stop is not None and n % WRITE_BATCH == 0 and stop.is_set():
                return False
            recorded += record_not_run(schedule_id=schedule_id, domain=domain, domain_config_id=config_id,
                                       scheduled_for=slot, instance_id=instance_id, reason=DOWNTIME_REASON, log=False)
    except DatabaseError as exc:
        logger.warning("Could not record slots missed while stopped: %s", exc)
        return False
    finally:
        if recorded:
            logger.warning("Recorded %d slot(s) missed while no scheduler instance was running", recorded)
    return True


def next_runs(*, specs: list[JobSpec], now: datetime) -> dict[uuid.UUID, datetime | None]:
    """Each loaded schedule's next_run (Schedule.next_run_after)."""
    return fires_by_trigger(specs, lambda trigger: Schedule.next_run_after(trigger, now=now))


def write_next_runs(*, fires: dict[uuid.UUID, datetime | None], shards: list[int] | None = None,
                    now: datetime | None = None, grace: float = 0.0, stop: threading.Event | None = None) -> bool:
    """Store each loaded schedule's next fire time (the first after ``now``),
    writing only the rows whose stored value differs (so N instances
    starting cost one write), in batches. A stored next_run within the grace
    time before ``now`` is left alone: that slot is being caught up, and its
    run writes the next one. False if stopped before the end."""
    try:
        stored = Schedule.objects.filter(enabled=True)
        if shards is not None:
            stored = stored.filter(shard__in=shards)
        stored = dict(stored.values_list("schedule_id", "next_run").iterator(chunk_size=20000))
        catching_up_from = now - timedelta(seconds=grace) if now is not None else None
        rows = [(fire, sid) for sid, fire in fires.items()
                if sid in stored and stored[sid] != fire
                and not (catching_up_from is not None and stored[sid] is not None
                         and catching_up_from <= stored[sid] <= now)]
        for start in range(0, len(rows), WRITE_BATCH):
            if stop is not None and stop.is_set():
                return False
            update_schedule_columns(columns=("next_run",), rows=rows[start:start + WRITE_BATCH])
    except DatabaseError as exc:
        logger.warning("Could not write next_run: %s", exc)
        return False
    return True
