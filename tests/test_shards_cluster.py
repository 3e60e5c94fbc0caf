"""Shards across real runscheduler processes on PostgreSQL and Redis: each
firing instance holds a fair share of the shards and loads only their
schedules; shards move on join, SIGKILL and SIGTERM without a lost or a
doubled slot; an edit is applied by its shard's owner only."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models.functions import Now

from schedules.models import SHARD_COUNT, Schedule, SchedulerInstance, ShardLease, shard_of
from schedules.services import update_schedule
from tests.cluster import Cluster
from tests.test_runscheduler_cluster import assert_each_slot_once, make_interval_schedules, wait_for_window
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def cluster_with(tmp_path, **env) -> Cluster:
    runs = tmp_path / "runs.txt"
    c = Cluster(tmp=tmp_path, env={
        "SCAN_RUNNER": "tests.runners.sleepy_runner", "SCAN_TEST_RUNS_FILE": str(runs), "SCAN_TEST_SLEEP_MAX": "0.2",
        "LOCK_TIMEOUT": "6", "JOB_MISFIRE_GRACE_TIME": "30", "SHUTDOWN_GRACE_SECONDS": "5",
        "SCHEDULE_CHECK_INTERVAL": "30", "MAX_WORKERS": "6", "LOG_LEVEL": "info", **env})
    c.runs_file = runs
    return c


@pytest.fixture
def cluster(tmp_path):
    c = cluster_with(tmp_path)
    yield c
    c.stop_all()


def live_owners() -> dict[int, str]:
    """Shard -> owner, of the leases not expired (by the database's clock)."""
    return dict(ShardLease.objects.filter(owner__isnull=False, expires_at__gt=Now()).values_list("shard", "owner"))


def reports(names) -> dict[str, dict]:
    return {i: s for i, s in SchedulerInstance.objects.filter(instance_id__in=names).values_list("instance_id", "status")}


def balanced(names, schedules) -> bool:
    """Every shard has one live owner among ``names``, each holds a fair
    share, each instance's own report agrees with the leases, and each
    schedule is loaded by the owner of its shard and by no other instance."""
    owners = live_owners()
    if len(owners) != SHARD_COUNT or set(owners.values()) != set(names):
        return False
    counts = Counter(owners.values())
    if max(counts.values()) - min(counts.values()) > 1:
        return False
    status = reports(names)
    if set(status) != set(names):
        return False
    for name in names:
        if sorted(status[name].get("shards", [])) != sorted(s for s, o in owners.items() if o == name):
            return False
    loaded_by = Counter(sid for name in names for sid in (status[name].get("jobs") or {}))
    for schedule in schedules:
        owner = owners[shard_of(schedule.schedule_id)]
        if loaded_by[str(schedule.schedule_id)] != 1 or str(schedule.schedule_id) not in status[owner]["jobs"]:
            return False
    return True


def wait_balanced(names, schedules, *, timeout: float = 30.0) -> float:
    started = time.monotonic()
    wait_until(lambda: balanced(names, schedules), timeout=timeout,
               message=lambda: f"not balanced: {Counter(live_owners().values())}")
    return time.monotonic() - started


def hourly(count: int) -> list[Schedule]:
    made = []
    for n in range(count):
        schedule = Schedule(domain_config_id=f"hourly-{n}", domain=f"hourly{n}.example.com", frequency="hourly",
                            time_config={"minute": n % 60})
        schedule.full_clean()
        schedule.save()
        made.append(schedule)
    return made


def test_a_single_instance_owns_every_shard_and_loads_every_schedule(cluster):
    schedules = hourly(40)
    only = cluster.start("only")
    cluster.wait_until_loaded(only)
    wait_balanced(["only"], schedules)
    assert SchedulerInstance.objects.get(instance_id="only").jobs_loaded == 40
    assert "Loaded 40 enabled schedules of 256 shard(s)" in only.log()


def test_three_instances_own_every_shard_exactly_once_and_load_only_their_own(cluster):
    schedules = hourly(60)
    names = ["a", "b", "c"]
    instances = [cluster.start(name) for name in names]
    for instance in instances:
        cluster.wait_until_loaded(instance)
    wait_balanced(names, schedules)
    loaded = {i: n for i, n in SchedulerInstance.objects.values_list("instance_id", "jobs_loaded")}
    assert sum(loaded.values()) == 60, f"each schedule loaded once in all: {loaded}"
    # Steady: still balanced a few lease renewals later, with no shard moved.
    owners = live_owners()
    wait_until(lambda: all(SchedulerInstance.objects.filter(last_seen__gt=Now() - timedelta(seconds=0.5))
                           .filter(instance_id=n).exists() for n in names), timeout=10)
    assert balanced(names, schedules) and live_owners() == owners


def test_a_joining_instance_takes_its_share_within_seconds(cluster):
    schedules = hourly(60)
    first = [cluster.start(name) for name in ("a", "b")]
    for instance in first:
        cluster.wait_until_loaded(instance)
    wait_balanced(["a", "b"], schedules)
    joiner = cluster.start("c")
    cluster.wait_until_loaded(joiner)
    took = wait_balanced(["a", "b", "c"], schedules, timeout=20)
    assert took < 10, f"the joiner's share took {took:.1f} s after it loaded"
    assert "Released" in first[0].log() and "Released" in first[1].log()


def test_sigkill_of_an_owner_hands_its_shards_over_within_two_heartbeats_and_loses_no_slot(tmp_path):
    # LOCK_TIMEOUT 12: heartbeats every 4 s, leases of 6 s.
    # No coalescing: each slot of the gap is run, not folded into the latest.
    cluster = cluster_with(tmp_path, LOCK_TIMEOUT="12", JOB_COALESCE="false")
    try:
        schedules = make_interval_schedules(12)
        names = ["a", "b", "c"]
        instances = [cluster.start(name) for name in names]
        for instance in instances:
            cluster.wait_until_loaded(instance)
        wait_balanced(names, [])
        victim = instances[0]
        held = {s for s, o in live_owners().items() if o == "a"}
        start = datetime.now(UTC).replace(microsecond=0)
        wait_until(lambda: datetime.now(UTC) > start + timedelta(seconds=1.2), timeout=5, interval=0.05)
        cluster.kill(victim)
        killed = time.monotonic()
        wait_until(lambda: held <= {s for s, o in live_owners().items() if o in ("b", "c")}, timeout=20,
                   interval=0.05, message=lambda: f"not taken over: {Counter(live_owners().values())}")
        took = time.monotonic() - killed
        assert took <= 2 * 4.0, f"the dead instance's shards took {took:.1f} s to move (two heartbeats: 8 s)"
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        wait_for_window(schedules, start, end)
        cluster.terminate(instances[1])
        cluster.terminate(instances[2])
        assert_each_slot_once(schedules, start, end, cluster.runs_file)
        assert "Took" in instances[1].log() + instances[2].log()
    finally:
        cluster.stop_all()


def test_sigterm_releases_the_leases_at_once(tmp_path):
    # LOCK_TIMEOUT 60: leases of 30 s, so a handover within seconds is the release.
    cluster = cluster_with(tmp_path, LOCK_TIMEOUT="60")
    try:
        schedules = hourly(30)
        a, b = cluster.start("a"), cluster.start("b")
        cluster.wait_until_loaded(a)
        cluster.wait_until_loaded(b)
        wait_balanced(["a", "b"], schedules)
        stopped = time.monotonic()
        assert cluster.terminate(a) == 0
        wait_until(lambda: set(live_owners().values()) == {"b"} and len(live_owners()) == SHARD_COUNT,
                   timeout=10, message=lambda: f"owners: {Counter(live_owners().values())}")
        assert time.monotonic() - stopped < 10, "well within the 30 s lease: released, not expired"
        assert "Released the leases of" in a.log()
        wait_until(lambda: SchedulerInstance.objects.get(instance_id="b").jobs_loaded == 30, timeout=10)
    finally:
        cluster.stop_all()


def test_an_edit_is_applied_only_by_the_owner_of_its_shard(cluster):
    schedules = hourly(40)
    a, b = cluster.start("a"), cluster.start("b")
    cluster.wait_until_loaded(a)
    cluster.wait_until_loaded(b)
    wait_balanced(["a", "b"], schedules)
    owners = live_owners()
    of_a = next(s for s in schedules if owners[shard_of(s.schedule_id)] == "a")
    of_b = next(s for s in schedules if owners[shard_of(s.schedule_id)] == "b")
    update_schedule(schedule_id=of_a.pk, time_config={"minute": 59})
    update_schedule(schedule_id=of_b.pk, time_config={"minute": 58})
    cluster.wait_for_log(a, f"Applied reschedule of schedule {of_a.schedule_id}")
    # b applies its own edit, made after a's: by then it has seen a's too.
    cluster.wait_for_log(b, f"Applied reschedule of schedule {of_b.schedule_id}")
    assert str(of_a.schedule_id) not in b.log() and str(of_b.schedule_id) not in a.log()
