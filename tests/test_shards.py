"""Shards and their leases (schedules/shards.py, runtime/shard_leases.py) on
the real database: the hash, the fair share, taking, renewing, releasing,
the catch-up rule, and what /healthz says about unowned shards."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from django.db import close_old_connections
from hypothesis import given
from hypothesis import strategies as st

from schedules import shards
from schedules.models import SHARD_COUNT, Schedule, ShardLease, ShardMember, shard_of
from schedules.runtime.shard_leases import catch_up_from

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_the_shard_of_an_id_is_stable_and_not_its_low_bits():
    # Fixed values: a change of the hash would move every schedule at an upgrade.
    assert shard_of(uuid.UUID("00000000-0000-0000-0000-000000000000")) == shard_of(uuid.UUID(int=0))
    known = uuid.UUID("3e30001c-43c4-47b8-99ca-ed6c747858e2")
    assert shard_of(known) == 141
    # uuid1 ids of one host share their low 48 bits (the MAC); they still spread.
    node_ids = [uuid.uuid1(node=0x0242AC110002, clock_seq=n) for n in range(2000)]
    assert len({shard_of(i) for i in node_ids}) > 200


def test_shards_are_balanced_over_random_ids():
    counts = [0] * SHARD_COUNT
    for _ in range(SHARD_COUNT * 200):
        counts[shard_of(uuid.uuid4())] += 1
    assert min(counts) > 200 * 0.6 and max(counts) < 200 * 1.4


def test_every_insert_path_writes_the_shard(make_schedule):
    saved = make_schedule()
    [bulk] = Schedule.objects.bulk_create([Schedule(domain_config_id="bulk-1", domain="bulk.example.com",
                                                    frequency="daily", time_config={"hour": 1, "minute": 0})])
    for schedule in (saved, bulk):
        assert Schedule.objects.get(pk=schedule.pk).shard == shard_of(schedule.pk)


@given(st.sets(st.text(min_size=1, max_size=8), min_size=1, max_size=300))
def test_fair_shares_add_up_to_every_shard_and_differ_by_one_at_most(member_ids):
    shares = [shards.fair_share(instance_id=i, member_ids=sorted(member_ids)) for i in member_ids]
    assert sum(shares) == SHARD_COUNT
    assert max(shares) - min(shares) <= 1


def test_an_instance_not_yet_among_the_members_counts_itself():
    assert shards.fair_share(instance_id="new", member_ids=["a"]) == SHARD_COUNT // 2


def test_two_takers_at_once_never_take_one_shard(transactional_db):
    shards.ensure_leases()
    taken: dict[str, dict] = {}
    start = threading.Barrier(4)

    def take(name: str) -> None:
        start.wait()
        try:
            got: dict = {}
            while part := shards.acquire(instance_id=name, count=7, ttl=30):
                got.update(part)
            taken[name] = got
        finally:
            close_old_connections()

    threads = [threading.Thread(target=take, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    everything = [shard for got in taken.values() for shard in got]
    assert sorted(everything) == list(range(SHARD_COUNT)), "each shard taken exactly once"
    owners = dict(ShardLease.objects.values_list("shard", "owner"))
    assert all(owners[shard] == name for name, got in taken.items() for shard in got)


def test_a_lapsed_lease_is_taken_with_its_last_renewal_and_a_live_one_is_not(transactional_db):
    shards.ensure_leases()
    assert len(shards.acquire(instance_id="old", count=SHARD_COUNT, ttl=30)) == SHARD_COUNT
    assert shards.acquire(instance_id="new", count=5, ttl=30) == {}, "live leases are not free"
    renewed_at = datetime.now(UTC) - timedelta(minutes=1)
    ShardLease.objects.filter(shard__in=[3, 4]).update(expires_at=datetime.now(UTC) - timedelta(seconds=1),
                                                        last_renewed=renewed_at)
    taken = shards.acquire(instance_id="new", count=5, ttl=30)
    assert taken == {3: renewed_at, 4: renewed_at}
    assert shards.renew(instance_id="old", ttl=30) == set(range(SHARD_COUNT)) - {3, 4}


def test_release_frees_at_once_and_marks_where_the_catch_up_starts(transactional_db):
    shards.ensure_leases()
    shards.acquire(instance_id="a", count=10, ttl=300)
    before = datetime.now(UTC)
    assert shards.release(instance_id="a", shards={0, 1}) == 2
    taken = shards.acquire(instance_id="b", count=2, ttl=300)
    assert set(taken) == {0, 1} and all(renewed >= before - timedelta(seconds=1) for renewed in taken.values())
    # A dead process's leases (same instance id, restarted) keep their last renewal.
    ShardLease.objects.filter(shard=5).update(last_renewed=before - timedelta(hours=1))
    shards.release(instance_id="a", mark=False)
    assert ShardLease.objects.get(shard=5).last_renewed == before - timedelta(hours=1)


def test_members_are_those_seen_within_the_lease_time(transactional_db):
    shards.join(instance_id="live")
    shards.join(instance_id="gone")
    ShardMember.objects.filter(instance_id="gone").update(seen_at=datetime.now(UTC) - timedelta(seconds=60))
    assert shards.members(ttl=30) == ["live"]
    shards.leave(instance_id="live")
    assert shards.members(ttl=30) == []


def test_the_catch_up_starts_at_the_last_renewal_within_the_grace_time():
    grace = 300
    # Never held (a first start): every slot within the grace time.
    assert catch_up_from(previous_renewal=None, now=NOW, grace=grace, margin=3) == NOW - timedelta(seconds=grace)
    # Held until 20 s ago: from then, less the margin for slots fired but not yet claimed.
    recent = NOW - timedelta(seconds=20)
    assert catch_up_from(previous_renewal=recent, now=NOW, grace=grace, margin=3) == recent - timedelta(seconds=3)
    # Held until long ago: the grace time still bounds it.
    assert catch_up_from(previous_renewal=NOW - timedelta(days=1), now=NOW, grace=grace,
                         margin=3) == NOW - timedelta(seconds=grace)


def test_unowned_shards_count_once_free_for_longer_than_asked(transactional_db):
    shards.ensure_leases()
    shards.acquire(instance_id="a", count=SHARD_COUNT, ttl=300)
    assert shards.unowned_count() == 0
    shards.release(instance_id="a", shards={7})
    assert shards.unowned_count() == 1
    assert shards.unowned_count(longer_than=60) == 0, "just released: a handover, not an outage"
    ShardLease.objects.filter(shard=7).update(last_renewed=datetime.now(UTC) - timedelta(seconds=120))
    assert shards.unowned_count(longer_than=60) == 1


def test_healthz_is_degraded_while_a_shard_is_unowned_for_two_heartbeats(client, transactional_db, settings):
    from schedules.instances import beat

    settings.LOCK_TIMEOUT = 3  # heartbeats every second: two heartbeats are 2 s
    beat(instance_id="a", started_at=datetime.now(UTC), jobs_loaded=0, running_now=0, status={})
    shards.ensure_leases()
    shards.acquire(instance_id="a", count=SHARD_COUNT, ttl=300)
    assert client.get("/healthz").json()["status"] == "ok"
    shards.release(instance_id="a", shards={9})
    assert client.get("/healthz").json()["status"] == "ok", "a handover is not a failure"
    ShardLease.objects.filter(shard=9).update(last_renewed=datetime.now(UTC) - timedelta(seconds=5))
    settings.HEALTHZ_TOKEN = "t"
    report = client.get("/healthz", HTTP_AUTHORIZATION="Bearer t").json()
    assert report["status"] == "degraded" and report["shards"]["unowned"] == 1


def test_shards_read_as_ranges():
    assert shards.describe_shards([5, 0, 1, 2, 9, 10]) == "0-2, 5, 9-10"
