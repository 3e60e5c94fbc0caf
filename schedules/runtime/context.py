"""Context: what every step of a slot's path needs from its instance.

The run context (clock, locks, runner, outage logs, the scans running here)
and the helpers that recover from a dependency going away.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from django.db import close_old_connections, connection, connections
from django.utils import timezone

from schedules.runtime.specs import JobSpec
from schedules.runtime.finish import ScheduleBookkeeping
from schedules.runtime.lock import HeldLock, SlotGate
from schedules.runtime.second_look import LostSlotCheck

logger = logging.getLogger("schedules.runtime")


class OutageLog:
    """Logs a warning when a dependency goes away and once when it is back:
    one line per outage, not one per run. While it is down, ``should_try``
    lets one caller probe it every PROBE_EVERY seconds; the others go straight
    to their fallback instead of each waiting out a socket timeout."""

    PROBE_EVERY = 2.0

    def __init__(self, name: str):
        self.name = name
        self._down = False
        self._last_probe = 0.0
        self._recovered_at = float("-inf")
        self._mutex = threading.Lock()

    def should_try(self) -> bool:
        if not self._down:
            return True
        with self._mutex:
            now = time.monotonic()
            if now - self._last_probe >= self.PROBE_EVERY:
                self._last_probe = now
                return True
        return False

    def down(self, error: BaseException, consequence: str) -> None:
        with self._mutex:
            self._last_probe = time.monotonic()
            first, self._down = not self._down, True
        if first:
            logger.warning("%s unavailable (%s); %s", self.name, error, consequence)

    def up(self) -> None:
        if self._down:
            with self._mutex:
                was, self._down = self._down, False
            if was:
                self._recovered_at = time.monotonic()
                logger.warning("%s is back", self.name)

    def recovered_within(self, seconds: float) -> bool:
        return time.monotonic() - self._recovered_at < seconds

    @property
    def is_down(self) -> bool:
        return self._down


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
    """What a slot run needs from its instance."""

    instance_id: str
    locks: object
    runner: Callable
    stop: threading.Event
    misfire_grace: float
    coalesce: bool
    retry_backoff: float
    stale_after: timedelta
    redis_outage: OutageLog
    db_outage: OutageLog
    slot_gate: SlotGate | None = None
    lost_slots: LostSlotCheck = field(default_factory=LostSlotCheck)
    bookkeeping: ScheduleBookkeeping = field(default_factory=ScheduleBookkeeping)
    running: dict[uuid.UUID, RunningScan] = field(default_factory=dict)
    running_mutex: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], datetime] = timezone.now
    queue_wake: threading.Event = field(default_factory=threading.Event)  # set when a slot is queued here
    max_deliveries: int = 3  # RuntimeConfig.max_deliveries: takes of a row before it is abandoned
    seats: object = None  # take.QueueTaker on a scanning instance: lets a claim go straight to a free worker
    pauses: object = None  # pauses.selectors.PauseSnapshot, refreshed by run.see_pauses; None: ask per slot
    pauses_max_age: timedelta = timedelta(seconds=2)  # an older snapshot is not trusted


def log_extra(ctx: RunContext, spec: JobSpec, execution_id=None, scheduled_for=None) -> dict:
    return {"extra": {"schedule_id": spec.schedule_id, "execution_id": execution_id,
                      "instance_id": ctx.instance_id, "scheduled_for": scheduled_for}}


def repair_connections() -> None:
    """After a database error: give back this thread's connection and have the
    pool drop every broken idle one (a restarted PostgreSQL breaks them all)."""
    close_old_connections()
    pool = getattr(connection, "pool", None) if connection.vendor == "postgresql" else None
    if pool is not None:
        try:
            pool.check()
        except Exception:  # noqa: BLE001 - the next claim retry reports the outage
            pass


def skip_checkout_health_checks() -> None:
    """A scheduler takes a pooled connection for every slot; checking each one
    on checkout was a fifth of a slot's database time. The runtime repairs the
    pool itself after a database error instead (repair_connections), so in
    this process the check is switched off before the pool exists."""
    wrapper = connections["default"]
    if wrapper.vendor == "postgresql" and wrapper.alias not in getattr(wrapper, "_connection_pools", {}):
        wrapper.settings_dict["CONN_HEALTH_CHECKS"] = False
