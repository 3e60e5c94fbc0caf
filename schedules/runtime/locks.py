"""Locks: the backends a run's schedule lock is held in.
redis-py ``Lock`` per schedule with Redis; a set of held ids in the embedded default.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field

from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("schedules.runtime")

REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def lock_key(schedule_id: uuid.UUID | str) -> str:
    """The Redis key of a schedule's lock: the one place it is spelled."""
    return f"lock:schedule:{schedule_id}"


class LockBackendDown(Exception):
    """Redis could not be reached; callers fall back to the database alone."""


@dataclass
class HeldLock:
    schedule_id: uuid.UUID
    handle: object  # the redis-py Lock; None for a local lock
    lost: bool = False
    lost_reason: str = ""
    renewals: int = field(default=0)


class RedisScheduleLocks:
    """redis-py ``Lock``: token-checked release, a timeout, and ``reacquire()``
    for renewal. ``thread_local=False`` because the watchdog thread renews
    locks taken by the worker threads."""

    backend = "redis"

    def __init__(self, *, client: Redis, timeout: float):
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


ScheduleLocks = RedisScheduleLocks | LocalScheduleLocks


def redis_client(redis_url: str) -> Redis | None:
    """The process's pooled Redis client (django-redis), or None without Redis."""
    return get_redis_connection("default") if redis_url else None


def make_schedule_locks(*, redis_url: str, timeout: float) -> ScheduleLocks:
    client = redis_client(redis_url)
    if client is not None:
        return RedisScheduleLocks(client=client, timeout=timeout)
    return LocalScheduleLocks(timeout=timeout)
