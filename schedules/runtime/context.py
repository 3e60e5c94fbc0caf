"""Context: what every step of a slot's path needs from its instance.
Its config, clock, locks, runner and outage logs, and the scans running here.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

from django.utils import timezone

from schedules.hooks import PauseSnapshot
from schedules.runtime.bookkeeping import ScheduleBookkeeping
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.locks import HeldLock, ScheduleLocks
from schedules.runtime.outages import OutageLog
from schedules.runtime.second_look import LostSlotCheck
from schedules.runtime.specs import JobSpec
from schedules.scans.request import Runner


class Seats(Protocol):
    """Free workers of a scanning instance (take.QueueTaker): a claim may go straight to one."""

    def reserve(self, count: int = 1) -> int: ...

    def unreserve(self, count: int = 1) -> None: ...

    def start(self, row: dict) -> None: ...


@dataclass
class RunningScan:
    execution_id: uuid.UUID
    schedule_id: uuid.UUID
    lock: HeldLock | None
    # Held while the watchdog renews the lock and while the finishing worker
    # lets go of it: a lock is never renewed after its release.
    mutex: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class RunContext:
    """What a slot run needs from its instance. Settings come from ``config`` only."""

    config: RuntimeConfig
    locks: ScheduleLocks
    runner: Runner
    stop: threading.Event
    redis_outage: OutageLog
    db_outage: OutageLog
    clock: Callable[[], datetime] = timezone.now  # the database's time (fire.SlotExecutor.db_now) in a service
    wall_clock: Callable[[], datetime] = timezone.now  # this host's own time, by which APScheduler fires
    seats: Seats | None = None  # None on an instance that runs no scans
    pauses: PauseSnapshot | None = None  # refreshed by take.see_pauses; None: ask per slot
    lost_slots: LostSlotCheck = field(default_factory=LostSlotCheck)
    bookkeeping: ScheduleBookkeeping = field(default_factory=ScheduleBookkeeping)
    running: dict[uuid.UUID, RunningScan] = field(default_factory=dict)
    running_mutex: threading.Lock = field(default_factory=threading.Lock)
    queue_wake: threading.Event = field(default_factory=threading.Event)  # set when a slot is queued here

    @property
    def instance_id(self) -> str:
        return self.config.instance_id

    @property
    def stale_after(self) -> timedelta:
        """A run whose heartbeat is older has stopped: its instance died or hangs."""
        return timedelta(seconds=self.config.heartbeat_interval * 1.5)

    @property
    def pauses_max_age(self) -> timedelta:
        """A pause snapshot older than this is not trusted: the slot asks the database."""
        return timedelta(seconds=max(2.0, 4 * self.config.change_poll_interval))


def log_extra(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID | None = None,
              scheduled_for: datetime | None = None) -> dict:
    return {"extra": {"schedule_id": spec.schedule_id, "execution_id": execution_id,
                      "instance_id": ctx.instance_id, "scheduled_for": scheduled_for}}
