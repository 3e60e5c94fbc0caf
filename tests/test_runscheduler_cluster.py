"""Three real `runscheduler` processes against the test PostgreSQL and Redis:
every slot in the window runs exactly once, through kills, Redis restarts and
skewed clocks."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from history.models import JobExecution
from schedules.models import Schedule
from schedules.timing.triggers import next_fire_times
from tests.cluster import Cluster, read_runs
from tests.services_control import start_redis, stop_redis
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UTC = timezone.utc


@pytest.fixture
def cluster(tmp_path):
    runs = tmp_path / "runs.txt"
    c = Cluster(
        tmp=tmp_path,
        env={
            "SCAN_RUNNER": "tests.runners.sleepy_runner",
            "SCAN_TEST_RUNS_FILE": str(runs),
            "SCAN_TEST_SLEEP_MAX": "0.3",
            "LOCK_TIMEOUT": "3",
            "JOB_MISFIRE_GRACE_TIME": "30",
            "SHUTDOWN_GRACE_SECONDS": "5",
            "SCHEDULE_CHECK_INTERVAL": "30",
            "MAX_WORKERS": "10",
            "LOG_LEVEL": "info",
        },
    )
    c.runs_file = runs
    yield c
    c.stop_all()


def make_interval_schedules(count: int, *, sleep=None, prefix: str = "cluster") -> list[Schedule]:
    schedules = []
    for n in range(count):
        settings = {"sleep": sleep} if sleep is not None else {}
        schedule = Schedule(domain_config_id=f"{prefix}-{n}", domain=f"{prefix}{n}.example.com", frequency="interval",
                            time_config={"seconds": 1 + n % 2}, scan_settings=settings)
        schedule.full_clean()
        schedule.save()
        schedules.append(schedule)
    return schedules


def expected_slots(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    slots = next_fire_times(schedule.trigger, count=100, now=start)
    return [s for s in slots if s <= end]


def assert_each_slot_once(schedules, start, end, runs_file, *, allowed=("success", "skipped")):
    rows = Counter()
    statuses = Counter()
    for execution in JobExecution.objects.filter(trigger="scheduled"):
        rows[(execution.schedule_id, execution.scheduled_for)] += 1
        statuses[execution.status] += 1
    runs = Counter((sid, slot) for sid, slot, _ in read_runs(runs_file))
    duplicated_runs = {key: n for key, n in runs.items() if n > 1}
    assert not duplicated_runs, f"slots run more than once: {duplicated_runs}"
    missing = []
    total = 0
    for schedule in schedules:
        for slot in expected_slots(schedule, start, end):
            total += 1
            if rows[(schedule.schedule_id, slot)] != 1:
                missing.append((schedule.domain, slot.isoformat()))
    assert not missing, f"{len(missing)} of {total} slots without exactly one execution: {missing[:10]}"
    in_window = JobExecution.objects.filter(scheduled_for__gt=start, scheduled_for__lte=end)
    unexpected = set(in_window.values_list("status", flat=True)) - set(allowed)
    assert not unexpected, f"unexpected statuses in the window: {unexpected} ({statuses})"
    return total


def start_three(cluster, **per_instance_env):
    instances = [cluster.start(f"inst-{n}", **per_instance_env.get(f"inst-{n}", {})) for n in range(3)]
    for instance in instances:
        cluster.wait_until_loaded(instance)
    return instances


def runs_after(cluster, after: datetime) -> int:
    return sum(1 for _, slot, _ in read_runs(cluster.runs_file) if datetime.fromisoformat(slot) > after)


def wait_for_runs(cluster, *, after: datetime, count: int) -> int:
    """Wait until the runner has recorded ``count`` runs of slots after
    ``after``: a window observed by what happened, not by a sleep."""
    return wait_until(lambda: (n := runs_after(cluster, after)) >= count and n, timeout=30 + count / 10,
                      message=lambda: f"{runs_after(cluster, after)} of {count} runs recorded")


def wait_for_window(schedules, start: datetime, end: datetime, *, final=("success", "skipped")) -> None:
    """Wait until every slot in (start, end] has a finished execution: the
    window is observed by what happened, however slow the machine is."""
    expected = {(s.schedule_id, slot) for s in schedules for slot in expected_slots(s, start, end)}

    def finished() -> set:
        return set(JobExecution.objects.filter(scheduled_for__gt=start, scheduled_for__lte=end, status__in=final)
                   .values_list("schedule_id", "scheduled_for"))

    wait_until(lambda: expected <= finished(), timeout=60 + (end - datetime.now(UTC)).total_seconds(),
               message=lambda: f"{len(expected - finished())} of {len(expected)} slots not finished")


def window_start() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def stop_and_check_exit_codes(cluster, instances):
    codes = {i.name: cluster.terminate(i) for i in instances if i.process.returncode is None}
    assert set(codes.values()) == {0}, {i.name: (codes[i.name], i.log()[-2000:]) for i in instances
                                        if codes.get(i.name, 0) != 0}


def test_three_instances_run_every_slot_exactly_once(cluster):
    schedules = make_interval_schedules(20)
    instances = start_three(cluster)
    start = window_start()
    end = start + timedelta(seconds=7)
    wait_for_window(schedules, start, end)
    stop_and_check_exit_codes(cluster, instances)
    total = assert_each_slot_once(schedules, start, end, cluster.runs_file)
    assert total >= 20 * 4
    ran_by = Counter(JobExecution.objects.values_list("instance_id", flat=True))
    assert len(ran_by) >= 2, f"work should spread over instances: {ran_by}"
    assert JobExecution.objects.filter(status="running").count() == 0
    for schedule in Schedule.objects.all():
        assert schedule.last_status == "success" and schedule.next_run is not None


def test_a_killed_instances_run_is_delivered_again_and_later_slots_still_run(cluster):
    long_running = make_interval_schedules(1, sleep=4, prefix="long")[0]
    schedules = make_interval_schedules(5) + [long_running]
    instances = start_three(cluster)
    start = window_start()
    victim_run = wait_until(lambda: JobExecution.objects.filter(schedule=long_running, status="running")
                            .values_list("execution_id", "instance_id").first(),
                            timeout=10, message="the long scan never started")
    execution_id, victim_name = victim_run
    victim = next(i for i in instances if i.name == victim_name)
    cluster.kill(victim)
    killed_at = datetime.now(UTC)
    # Its heartbeat stops; a survivor puts the row back in the queue and takes
    # it again (same Idempotency-Key). It then runs, or is skipped because a
    # later slot of the same schedule holds the lock meanwhile (scans of 4 s
    # every 1-2 s): one run of a schedule at a time, as for any slot.
    wait_until(lambda: JobExecution.objects.filter(execution_id=execution_id, status__in=("success", "skipped"))
               .exists() and JobExecution.objects.filter(schedule=long_running, scheduled_for__gt=killed_at,
                                                         status="success").exists(),
               timeout=40, message=lambda: str(list(JobExecution.objects.filter(schedule=long_running)
                                                  .values_list("scheduled_for", "status", "instance_id",
                                                               "deliveries"))))
    rescued = JobExecution.objects.get(execution_id=execution_id)
    assert rescued.deliveries == 2 and rescued.instance_id not in ("", victim_name), "delivered again elsewhere"
    end = datetime.now(UTC) + timedelta(seconds=2)
    wait_for_window(schedules, start, end, final=("success", "skipped"))
    survivors = [i for i in instances if i is not victim]
    stop_and_check_exit_codes(cluster, survivors)
    assert not JobExecution.objects.filter(status__in=("running", "abandoned")).exists()
    # Two deliveries of one execution are one run at a scan API that honours
    # Idempotency-Key (read_runs counts a key once), and no slot ran twice.
    assert_each_slot_once(schedules, start, end, cluster.runs_file, allowed=("success", "skipped"))


def test_redis_stopped_and_restarted_mid_run_loses_and_duplicates_nothing(cluster):
    schedules = make_interval_schedules(12)
    instances = start_three(cluster)
    start = window_start()
    wait_for_runs(cluster, after=start, count=12)
    stop_redis()
    try:
        wait_until(lambda: any("Redis unavailable" in i.log() for i in instances), timeout=15,
                   message="no instance noticed that Redis was gone")
        wait_for_runs(cluster, after=start, count=runs_after(cluster, start) + 12)
    finally:
        start_redis()
    end = datetime.now(UTC) + timedelta(seconds=4)
    wait_for_window(schedules, start, end)
    stop_and_check_exit_codes(cluster, instances)
    assert_each_slot_once(schedules, start, end, cluster.runs_file)
    for instance in instances:
        outage_warnings = instance.log().count("Redis unavailable")
        assert outage_warnings <= 1, f"{instance.name} warned {outage_warnings} times for one outage"
    assert sum(i.log().count("Redis unavailable") for i in instances) >= 1


def test_an_instance_with_a_clock_three_seconds_off_changes_nothing(cluster):
    schedules = make_interval_schedules(12)
    instances = start_three(cluster, **{"inst-1": {"SCHEDULER_TEST_CLOCK_OFFSET": "3"},
                                        "inst-2": {"SCHEDULER_TEST_CLOCK_OFFSET": "-3"}})
    start = window_start() + timedelta(seconds=3)
    wait_until(lambda: JobExecution.objects.filter(instance_id="inst-1", scheduled_for__gt=start).exists(),
               timeout=30, message="the instance whose clock is ahead never won a slot")
    end = start + timedelta(seconds=8)
    wait_for_window(schedules, start, end)
    stop_and_check_exit_codes(cluster, instances)
    assert_each_slot_once(schedules, start, end, cluster.runs_file)
    ahead = JobExecution.objects.filter(instance_id="inst-1")
    assert ahead.exists(), "the instance whose clock is ahead should win some slots"
