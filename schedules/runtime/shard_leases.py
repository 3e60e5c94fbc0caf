"""Shard leases: a firing instance holds a fair share of the shards and loads only their schedules.
Shards move when an instance joins, dies or stops; the new owner catches each one up from its last owner's last renewal.
"""
# Quartz's JDBC cluster, Kafka consumer groups and Kinesis KCL split work
# the same way: leases on a shared store, renewed while alive, taken over
# when they lapse. Two owners may overlap for a moment during a handover:
# the unique claim (claim.py) still decides, so a slot runs once.

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Callable

from scanner_project import metrics
from schedules import shards
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.job_table import JobTable
from schedules.runtime.startup import ShardRecords, StartupWrites

logger = logging.getLogger("schedules.runtime")

# Shards taken and loaded in one step (a sixteenth of them); then the leases
# are renewed and the members counted again, so instances that start
# together share at once instead of the first one loading everything.
STEP_SHARDS = 16


def catch_up_from(*, previous_renewal: datetime | None, now: datetime, grace: float, margin: float) -> datetime:
    """The earliest slot the new owner of a shard still fires: within the
    grace time, and not before its last owner's last renewal (less
    ``margin``, for slots it fired but had not claimed yet when it died; the
    claim drops any it did claim). The same rule at start-up and at a
    takeover."""
    start = now - timedelta(seconds=grace)
    if previous_renewal is not None:
        start = max(start, previous_renewal - timedelta(seconds=margin))
    return start


class ShardKeeper:
    def __init__(self, *, config: RuntimeConfig, jobs: JobTable, writes: StartupWrites,
                 clock: Callable[[], datetime], stop: threading.Event):
        self.config = config
        self.jobs = jobs
        self.writes = writes
        self.clock = clock  # the database's time (fire.SlotExecutor.db_now)
        self.stop = stop
        self.leased: set[int] = set()
        self._mutex = threading.Lock()  # one pass at a time (start-up's, the loop's, the release's)
        self._renewed_at = float("-inf")

    @property
    def instance_id(self) -> str:
        return self.config.instance_id

    def begin(self) -> None:
        """Before the first pass: every lease row exists, and leases still in
        this instance's name (an earlier process with the same id that was
        killed) are given up with their last renewal kept, for the catch-up."""
        shards.ensure_leases()
        shards.release(instance_id=self.instance_id, mark=False)
        shards.join(instance_id=self.instance_id)

    def keep(self) -> None:
        """One pass: renew, then move toward the fair share, releasing the
        excess or taking the shortfall a step at a time."""
        with self._mutex:
            self._renew()
            while not self.stop.is_set():
                share = shards.fair_share(instance_id=self.instance_id,
                                          member_ids=shards.members(ttl=self.config.lease_ttl))
                if len(self.leased) > share:
                    self._release(set(sorted(self.leased)[share:]))
                    break
                if len(self.leased) == share or not self._take(min(STEP_SHARDS, share - len(self.leased))):
                    break
                if time.monotonic() - self._renewed_at > self.config.lease_pass:
                    self._renew()
            metrics.SHARDS_HELD.set(len(self.leased))
            metrics.SHARDS_UNOWNED.set(shards.unowned_count())

    def release_all(self) -> None:
        """At shutdown: every lease goes at once, so a rolling restart moves
        shards without waiting for expiry, and this instance stops counting
        as a member."""
        with self._mutex:
            shards.leave(instance_id=self.instance_id)
            released = shards.release(instance_id=self.instance_id)
            self.leased = set()
            metrics.SHARDS_HELD.set(0)
        if released:
            logger.info("Released the leases of %d shard(s)", released)

    def _renew(self) -> None:
        shards.join(instance_id=self.instance_id)
        renewed = shards.renew(instance_id=self.instance_id, ttl=self.config.lease_ttl)
        self._renewed_at = time.monotonic()
        lost = self.leased - renewed
        if lost:
            # Not renewed in time (a pause, a database outage): another instance took them.
            logger.warning("Lost the leases of %d shard(s) to other instances: %s", len(lost),
                           shards.describe_shards(sorted(lost)))
            self.jobs.drop_shards(lost)
        extra = renewed - self.leased
        if extra:  # leased in this name but not loaded here (should not happen): give them back
            shards.release(instance_id=self.instance_id, shards=extra, mark=False)
        self.leased &= renewed

    def _release(self, excess: set[int]) -> None:
        # The jobs go first: once released, the shard is the next owner's.
        self.jobs.drop_shards(excess)
        shards.release(instance_id=self.instance_id, shards=excess)
        self.leased -= excess
        logger.info("Released %d shard(s) for the other instances: %s", len(excess),
                    shards.describe_shards(sorted(excess)))

    def _take(self, count: int) -> int:
        taken = shards.acquire(instance_id=self.instance_id, count=count, ttl=self.config.lease_ttl)
        if not taken:
            return 0
        now = self.clock()
        starts = {shard: catch_up_from(previous_renewal=renewed, now=now, grace=self.config.misfire_grace,
                                       margin=self.config.lease_ttl)
                  for shard, renewed in taken.items()}
        self.leased |= taken.keys()
        loaded = self.jobs.load_shards(starts, now=now)
        self.writes.add(ShardRecords(shards=sorted(taken), specs=loaded, now=now))
        logger.info("Took %d shard(s): %s (%d held)", len(taken), shards.describe_shards(sorted(taken)),
                    len(self.leased))
        return len(taken)
