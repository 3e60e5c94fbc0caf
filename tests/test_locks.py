"""The per-schedule lock against the real test Redis."""

import threading
import uuid

import pytest
from django_redis import get_redis_connection

from schedules.runtime.locks import LocalScheduleLocks, RedisScheduleLocks, lock_key
from tests.waiting import wait_until


@pytest.fixture
def locks():
    return RedisScheduleLocks(client=get_redis_connection("default"), timeout=0.6)


def test_lock_uses_the_documented_key_and_excludes_a_second_holder(locks, redis_client):
    schedule_id = uuid.uuid4()
    held = locks.acquire(schedule_id)
    assert held is not None
    assert redis_client.exists(f"lock:schedule:{schedule_id}") == 1 == redis_client.exists(lock_key(schedule_id))
    assert locks.acquire(schedule_id) is None
    locks.release(held)
    assert redis_client.exists(lock_key(schedule_id)) == 0
    assert locks.acquire(schedule_id) is not None


def test_renewal_every_third_of_the_timeout_keeps_the_lock_for_ten_timeouts(locks, redis_client):
    schedule_id = uuid.uuid4()
    held = locks.acquire(schedule_id)
    stop = threading.Event()

    def watchdog():
        while not stop.wait(locks.timeout / 3):
            locks.renew(held)

    thread = threading.Thread(target=watchdog)
    thread.start()
    try:
        # Held across many lifetimes of the key, only by renewals.
        wait_until(lambda: held.renewals >= 30, timeout=locks.timeout * 30)
        assert not held.lost
        assert locks.acquire(schedule_id) is None
        assert held.renewals >= 30
    finally:
        stop.set()
        thread.join()
    locks.release(held)
    assert not held.lost


def test_without_renewal_the_lock_expires(locks, redis_client):
    schedule_id = uuid.uuid4()
    locks.acquire(schedule_id)
    wait_until(lambda: not redis_client.exists(lock_key(schedule_id)), timeout=locks.timeout * 5)
    assert locks.acquire(schedule_id) is not None


def test_release_by_a_non_owner_fails_and_leaves_the_lock(locks, redis_client):
    schedule_id = uuid.uuid4()
    owner = locks.acquire(schedule_id)
    other = RedisScheduleLocks(client=redis_client, timeout=0.6)
    impostor = other.client.lock(lock_key(schedule_id), timeout=0.6, thread_local=False)
    impostor.local.token = b"not-the-owners-token"
    from redis.exceptions import LockNotOwnedError

    with pytest.raises(LockNotOwnedError):
        impostor.release()
    assert redis_client.get(lock_key(schedule_id)) == owner.handle.local.token


def test_a_deleted_lock_is_detected_at_the_next_renewal(locks, redis_client):
    schedule_id = uuid.uuid4()
    held = locks.acquire(schedule_id)
    assert locks.renew(held) is True
    redis_client.delete(lock_key(schedule_id))
    assert locks.renew(held) is False
    assert held.lost and "deleted" in held.lost_reason


def test_a_lock_taken_over_by_another_holder_is_lost_not_released(locks, redis_client):
    schedule_id = uuid.uuid4()
    held = locks.acquire(schedule_id)
    wait_until(lambda: not redis_client.exists(lock_key(schedule_id)), timeout=locks.timeout * 5)  # expired
    # someone else takes it
    second = locks.acquire(schedule_id)
    assert second is not None
    locks.release(held)
    assert held.lost
    assert redis_client.get(lock_key(schedule_id)) == second.handle.local.token


def test_local_locks_have_the_same_behaviour():
    locks = LocalScheduleLocks(timeout=1)
    schedule_id = uuid.uuid4()
    held = locks.acquire(schedule_id)
    assert locks.acquire(schedule_id) is None
    assert locks.renew(held)
    locks.release(held)
    assert locks.acquire(schedule_id) is not None
