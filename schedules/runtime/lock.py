"""Lock: a taken slot runs only while no other run of its schedule does (redis-py Lock per schedule).
Without Redis, overlap is checked against running rows; the slot gate (SET NX) spares losing claims.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.exceptions import LockError, LockNotOwnedError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from history import services as history

if TYPE_CHECKING:
    from schedules.runtime.specs import JobSpec
    from schedules.runtime.context import RunContext

logger = logging.getLogger("schedules.runtime")

REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def lock_key(schedule_id: uuid.UUID | str) -> str:
    return f"lock:schedule:{schedule_id}"


class LockBackendDown(Exception):
    """Redis could not be reached; callers fall back to the database alone."""


@dataclass
class HeldLock:
    schedule_id: uuid.UUID
    handle: object
    lost: bool = False
    lost_reason: str = ""
    renewals: int = field(default=0)


class RedisScheduleLocks:
    """redis-py ``Lock``: token-checked release, a timeout, and ``reacquire()``
    for renewal. ``thread_local=False`` because the watchdog thread renews
    locks taken by the worker threads."""

    backend = "redis"

    def __init__(self, *, client, timeout: float):
        self.client = client
        self.timeout = timeout

    def acquire(self, schedule_id: uuid.UUID) -> HeldLock | None:
        lock = self.client.lock(lock_key(schedule_id), timeout=self.timeout, blocking=False, thread_local=False)
        try:
            acquired = lock.acquire(blocking=False)
        except REDIS_DOWN_ERRORS as exc:
            raise LockBackendDown(str(exc)) from exc
        return HeldLock(schedule_id=schedule_id, handle=lock) if acquired else None

    def break_stale(self, schedule_id: uuid.UUID) -> None:
        """Delete a lock whose holder is known dead (its run stopped beating)."""
        try:
            self.client.delete(lock_key(schedule_id))
        except REDIS_DOWN_ERRORS as exc:
            raise LockBackendDown(str(exc)) from exc

    def renew(self, held: HeldLock) -> bool:
        """Reset the lock's time to live. False (and ``held.lost``) when the
        lock expired or was deleted or taken over meanwhile."""
        if held.lost:
            return False
        try:
            held.handle.reacquire()
        except LockNotOwnedError:
            held.lost, held.lost_reason = True, "lock expired or was deleted while the scan ran"
            return False
        except REDIS_DOWN_ERRORS as exc:
            # Unreachable is not lost: the key may still be ours when Redis returns.
            logger.debug("lock renewal for %s failed: %s", held.schedule_id, exc)
            return True
        held.renewals += 1
        return True

    def release(self, held: HeldLock) -> None:
        try:
            held.handle.release()
        except LockNotOwnedError:
            if not held.lost:
                held.lost, held.lost_reason = True, "lock was no longer ours at release"
        except (LockError, *REDIS_DOWN_ERRORS) as exc:
            logger.debug("lock release for %s failed: %s", held.schedule_id, exc)


class LocalScheduleLocks:
    """The embedded default's lock (no Redis, one instance): a set of held
    schedule ids, same interface as the Redis locks."""

    backend = "local"

    def __init__(self, *, timeout: float):
        self.timeout = timeout
        self._held: set = set()
        self._mutex = threading.Lock()

    def acquire(self, schedule_id: uuid.UUID) -> HeldLock | None:
        with self._mutex:
            if schedule_id in self._held:
                return None
            self._held.add(schedule_id)
        return HeldLock(schedule_id=schedule_id, handle=None)

    def break_stale(self, schedule_id: uuid.UUID) -> None:
        with self._mutex:
            self._held.discard(schedule_id)

    def renew(self, held: HeldLock) -> bool:
        held.renewals += 1
        return not held.lost

    def release(self, held: HeldLock) -> None:
        with self._mutex:
            self._held.discard(held.schedule_id)


def make_schedule_locks(*, timeout: float):
    from django.conf import settings

    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return RedisScheduleLocks(client=get_redis_connection("default"), timeout=timeout)
    return LocalScheduleLocks(timeout=timeout)


class SlotGate:
    """A cheap first-come check per slot in Redis (SET NX), so that losing
    instances skip their database insert. It only ever says "someone else
    fired this slot first"; the database claim stays the fence that decides
    who runs it, so a Redis outage just lets every instance through.

    ``shared`` is False while no other live instance fires slots (the
    service checks at each heartbeat): then the gate would spare nobody an
    insert, and costs a round trip per slot, so it is skipped."""

    def __init__(self, *, client, ttl: float):
        self.client = client
        self.ttl = int(max(ttl, 1))
        self.shared = True  # until the first heartbeat says otherwise

    def first(self, schedule_id: uuid.UUID, slot, instance_id: str) -> bool:
        if self.client is None or not self.shared:
            return True
        return self.first_many([(schedule_id, slot)], instance_id)[0]

    def first_many(self, slots: list[tuple[uuid.UUID, object]], instance_id: str) -> list[bool]:
        """first() for many slots, in one pipelined round trip."""
        if self.client is None or not self.shared or not slots:
            return [True] * len(slots)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for schedule_id, slot in slots:
                    pipe.set(f"slot:{schedule_id}:{int(slot.timestamp() * 1000)}", instance_id, nx=True, ex=self.ttl)
                return [bool(answer) for answer in pipe.execute()]
        except REDIS_DOWN_ERRORS:
            return [True] * len(slots)


def make_slot_gate(*, ttl: float) -> SlotGate:
    from django.conf import settings

    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        return SlotGate(client=get_redis_connection("default"), ttl=ttl)
    return SlotGate(client=None, ttl=ttl)


def take_lock(ctx: RunContext, spec: JobSpec, execution_id: uuid.UUID) -> tuple[bool, HeldLock | None, str]:
    """(may run, lock, reason). Without Redis, overlap is checked in the database."""
    try:
        if not ctx.redis_outage.should_try():
            raise LockBackendDown("still unavailable")
        held = ctx.locks.acquire(spec.schedule_id)
        if held is None and not history.has_live_run(
            schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id
        ):
            # The holder's run stopped beating (its process was killed): the
            # lock is stale, not busy.
            ctx.locks.break_stale(spec.schedule_id)
            held = ctx.locks.acquire(spec.schedule_id)
        ctx.redis_outage.up()
    except LockBackendDown as exc:
        ctx.redis_outage.down(exc, "running on the database claim alone")
        if history.has_live_run(schedule_id=spec.schedule_id, stale_after=ctx.stale_after, exclude=execution_id):
            return False, None, "a previous run of this schedule is still running (checked in the database)"
        return True, None, ""
    if held is None:
        return False, None, f"lock lock:schedule:{spec.schedule_id} is held: a previous run is still running"
    return True, held, ""
