"""The slot queue with real `runscheduler` processes, real PostgreSQL and
Redis, and a scan API that counts what reaches it (and honours
Idempotency-Key): a herd larger than the grace time allows still runs every
slot exactly once, through SIGTERM and SIGKILL, and a scans-only instance
drains what another instance fired."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from history.models import JobExecution
from schedules.models import Schedule
from tests.cluster import Cluster
from tests.scan_api import CountingScanApi
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
UTC = timezone.utc
SCAN_SECONDS = 1.0


@pytest.fixture
def scan_api():
    with CountingScanApi(seconds=SCAN_SECONDS) as api:
        yield api


@pytest.fixture
def cluster(tmp_path, scan_api):
    c = Cluster(tmp=tmp_path, env={
        "SCAN_API_URL": scan_api.url, "SCAN_RUNNER": "", "MAX_WORKERS": "2", "JOB_MISFIRE_GRACE_TIME": "2",
        "LOCK_TIMEOUT": "3", "SHUTDOWN_GRACE_SECONDS": "5", "SCHEDULE_CHECK_INTERVAL": "30", "LOG_LEVEL": "info",
    })
    yield c
    c.stop_all()


def herd(count: int, *, at: datetime) -> list[Schedule]:
    made = []
    for n in range(count):
        schedule = Schedule(domain_config_id=f"herd-{n}", domain=f"herd{n}.example.com", frequency="once",
                            time_config={"at": at.isoformat()})
        schedule.full_clean()
        schedule.save()
        made.append(schedule)
    return made


def soon(seconds: float = 3) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def statuses() -> Counter:
    return Counter(JobExecution.objects.values_list("status", flat=True))


def start_loaded(cluster, *names: str) -> list:
    """Start instances ("name" or "name --flag") and wait until each loaded its jobs."""
    instances = [cluster.start(*name.split()) for name in names]
    for instance in instances:
        cluster.wait_until_loaded(instance)
    return instances


def herd_scanned(schedules, at) -> set:
    """The (schedule, slot) keys the scan API should see for a herd."""
    return {(str(s.schedule_id), at.isoformat()) for s in schedules}


def all_finished(count: int):
    counts = statuses()
    return sum(counts.values()) == count and not counts["queued"] and not counts["running"]


def test_a_herd_larger_than_grace_times_workers_runs_every_slot_exactly_once(cluster, scan_api):
    # 24 scans of 1 s on 2 x 2 workers take 6 s: far past the 2 s grace time.
    at = soon(4)
    schedules = herd(24, at=at)
    instances = start_loaded(cluster, "herd-0", "herd-1")
    wait_until(lambda: all_finished(24), timeout=60, message=lambda: f"{statuses()} {instances[0].log()[-2000:]}")
    assert statuses() == {"success": 24}
    assert scan_api.duplicates() == {}
    assert set(scan_api.scans) == herd_scanned(schedules, at)
    delays = [(started - slot).total_seconds() for started, slot in
              JobExecution.objects.values_list("started_at", "scheduled_for")]
    assert max(delays) > 2, "the herd must outlast the grace time for this test to mean anything"
    for instance in instances:
        assert cluster.terminate(instance) == 0


def test_sigterm_and_sigkill_mid_backlog_lose_and_duplicate_nothing(cluster, scan_api):
    at = soon(4)
    schedules = herd(36, at=at)
    instances = start_loaded(cluster, "inst-0", "inst-1", "inst-2")
    wait_until(lambda: scan_api.count() >= 8, timeout=30, message=lambda: str(statuses()))
    assert statuses()["queued"] > 0, "the backlog must still be there when the instances go"
    cluster.kill(instances[0])
    assert cluster.terminate(instances[1]) == 0
    interrupted = JobExecution.objects.filter(status="interrupted").count()
    assert interrupted == 0, "SIGTERM lets running scans finish and leaves queued slots queued"
    restarted = [cluster.start(f"{instance.name}-again") for instance in instances[:2]]
    wait_until(lambda: all_finished(36), timeout=90, message=lambda: f"{statuses()} {restarted[0].log()[-2000:]}")
    # The SIGKILLed instance's runs in flight went back to the queue when
    # their heartbeat stopped and were delivered again: a scan that had
    # reached the API was answered by its Idempotency-Key, not run twice; one
    # that had not was run. Every slot was scanned exactly once.
    assert statuses() == {"success": 36}
    redelivered = JobExecution.objects.filter(deliveries=2)
    assert redelivered.exists(), "the killed instance had runs in flight: this test must exercise the rescue"
    assert not JobExecution.objects.filter(deliveries__gt=2).exists()
    assert scan_api.duplicates() == {}
    assert set(scan_api.scans) == herd_scanned(schedules, at)
    for instance in [instances[2], *restarted]:
        assert cluster.terminate(instance) == 0


def test_a_scans_only_instance_drains_a_queue_fired_by_another(cluster, scan_api):
    at = soon(4)
    herd(8, at=at)
    firer, scanner = start_loaded(cluster, "firer --fire-only", "scanner --scans-only")
    wait_until(lambda: all_finished(8), timeout=30, message=lambda: f"{statuses()} {firer.log()[-2000:]}")
    ran_by = Counter(JobExecution.objects.values_list("instance_id", flat=True))
    assert ran_by == {"scanner": 8}
    fired_by = Counter(JobExecution.objects.values_list("metadata__fired_by", flat=True))
    assert fired_by == {"firer": 8}
    assert scan_api.count() == 8 and not scan_api.duplicates()
    for instance in (firer, scanner):
        assert cluster.terminate(instance) == 0
