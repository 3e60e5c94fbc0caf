"""One real `runscheduler` process: start, heartbeat, shutdown, outages."""

import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django_redis import get_redis_connection

from history.models import JobExecution
from schedules.models import Schedule, SchedulerInstance
from schedules.runtime.locks import lock_key
from tests.cluster import Cluster
from tests.services_control import start_postgres, stop_postgres
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
UTC = timezone.utc


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp=tmp_path, env={"SCAN_RUNNER": "tests.runners.sleepy_runner", "SCAN_TEST_SLEEP_MAX": "0.1",
                                   "LOCK_TIMEOUT": "3", "SHUTDOWN_GRACE_SECONDS": "1", "MAX_WORKERS": "4",
                                   "DB_POOL_TIMEOUT": "1"})
    yield c
    c.stop_all()


def make(n=1, **fields):
    made = []
    for i in range(n):
        values = {"domain_config_id": f"life-{i}", "domain": f"life{i}.example.com", "frequency": "interval",
                  "time_config": {"seconds": 1}} | fields
        schedule = Schedule(**values)
        schedule.full_clean()
        schedule.save()
        made.append(schedule)
    return made


def test_idle_instance_reports_itself_and_stops_within_a_second_on_sigint(cluster):
    make(2, time_config={"hours": 1})
    instance = cluster.start("idle")
    cluster.wait_until_loaded(instance)
    wait_until(lambda: SchedulerInstance.objects.filter(instance_id="idle").exists(), timeout=5)
    record = SchedulerInstance.objects.get(instance_id="idle")
    assert record.jobs_loaded == 2 and record.pid == instance.process.pid and record.stopped_at is None
    assert set(record.status["jobs"]) == {str(s.schedule_id) for s in Schedule.objects.all()}
    assert Schedule.objects.filter(next_run__isnull=True).count() == 0
    started = time.monotonic()
    instance.process.send_signal(signal.SIGINT)
    assert instance.process.wait(timeout=5) == 0
    assert time.monotonic() - started < 1.0
    assert SchedulerInstance.objects.get(instance_id="idle").stopped_at is not None


@pytest.mark.parametrize("max_deliveries, outcome", [(3, "queued"), (1, "interrupted")])
def test_sigterm_lets_scans_finish_then_gives_the_rest_back_to_the_queue(cluster, max_deliveries, outcome):
    long_scan = make(1, time_config={"seconds": 2}, scan_settings={"sleep": 20})[0]
    instance = cluster.start("stopper", MAX_DELIVERIES=str(max_deliveries))
    cluster.wait_until_loaded(instance)
    wait_until(lambda: get_redis_connection("default").exists(lock_key(long_scan.schedule_id)), timeout=10,
               message=instance.log)
    assert JobExecution.objects.filter(status="running").exists()
    started = time.monotonic()
    assert cluster.terminate(instance) == 0
    assert time.monotonic() - started < 4, "the grace period is 1 s"
    # Cut off by the shutdown: delivered again by the next instance, as after
    # a crash, unless it is out of deliveries.
    execution = JobExecution.objects.get(status=outcome)
    assert execution.deliveries == 1 and not JobExecution.objects.filter(status="running").exists()
    if outcome == "queued":
        assert execution.instance_id == "" and execution.started_at == execution.created_at
    else:
        assert "shut down" in execution.error_message
    assert not get_redis_connection("default").exists(lock_key(long_scan.schedule_id)), "lock released"


def test_slots_missed_while_no_instance_ran_are_recorded(cluster):
    # Enough overdue schedules that writing their records takes a while after "Loaded".
    make(200, time_config={"minutes": 5})
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    Schedule.objects.update(next_run=long_ago)
    instance = cluster.start("late", JOB_MISFIRE_GRACE_TIME="60")
    cluster.wait_until_loaded(instance)
    # Stopped as soon as it has loaded: shutdown waits for the start-up records.
    assert cluster.terminate(instance) == 0
    assert "Start-up records written" in instance.log()
    missed = JobExecution.objects.filter(status="missed")
    assert missed.count() == 200 and {m.scheduled_for for m in missed} == {long_ago}
    assert "no scheduler instance was running" in missed.first().error_message
    assert not Schedule.objects.filter(next_run__lt=datetime.now(UTC) - timedelta(minutes=1)).exists()


def test_postgres_restart_is_survived_without_stale_connection_errors(cluster):
    make(4, time_config={"seconds": 1})
    instance = cluster.start("survivor", JOB_MISFIRE_GRACE_TIME="3")
    cluster.wait_until_loaded(instance)
    wait_until(lambda: JobExecution.objects.filter(status="success").count() >= 4, timeout=15,
               message=instance.log)
    connection.close()
    stop_postgres()
    try:
        # Down for longer than the grace time: slots are given up and logged missed.
        cluster.wait_for_log(instance, "PostgreSQL unavailable", timeout=15)
        cluster.wait_for_log(instance, "missed", timeout=20)
    finally:
        start_postgres()
        # This test process's own pool backed off while the server was down: start a new one.
        connection.close_pool()
    resumed_at = datetime.now(UTC)
    wait_until(lambda: JobExecution.objects.filter(scheduled_for__gt=resumed_at + timedelta(seconds=1),
                                                   status="success").count() >= 4,
               timeout=30, message=lambda: instance.log()[-3000:])
    connection.close()
    assert cluster.terminate(instance) == 0
    log = instance.log()
    assert log.count("PostgreSQL unavailable") >= 1
    assert "missed" in log, "slots that could not be claimed within the grace time are logged as missed"
    after = JobExecution.objects.filter(scheduled_for__gt=resumed_at + timedelta(seconds=1), status="success")
    assert after.count() >= 4, log[-3000:]
    late_errors = log[log.rfind("is back"):] if "is back" in log else log
    assert "Traceback" not in late_errors, late_errors[-3000:]


def test_run_enhanced_scheduler_entry_point(transactional_db):
    """The original design's Python entry point starts and stops in-process."""
    from schedules.scheduler import EnhancedScheduler

    make(1, time_config={"hours": 1})
    scheduler = EnhancedScheduler(max_workers=2, enable_api_sync=False, instance_id="in-process")
    scheduler.start()
    try:
        wait_until(lambda: SchedulerInstance.objects.filter(instance_id="in-process").exists(), timeout=10)
        assert scheduler.running and len(scheduler.service.jobs)
    finally:
        scheduler.shutdown()
    assert not scheduler.running
    assert os.getpid() == SchedulerInstance.objects.get(instance_id="in-process").pid


def test_periodic_sync_cleanup_and_metrics_run_inside_runscheduler(cluster, api_server, tmp_path):
    """The runscheduler loop wires the API import, the history cleanup, the
    audit trail's pruning and its own metrics endpoint."""
    import json
    import socket
    import urllib.request

    from time_machine import travel

    from audit.models import AuditEntry
    from audit.verify import verify_chain
    from tests.api_server import EXAMPLE

    with travel(datetime.now(UTC) - timedelta(days=40), tick=False):  # its audit entry is 40 days old
        [old_entry] = make(domain_config_id="audited-long-ago", frequency="daily", time_config={"hour": 3, "minute": 0},
                           enabled=False)

    old = JobExecution.objects.create(
        job_id="schedule:gone", domain="old.example.com", domain_config_id="old", status="success",
        started_at=datetime.now(UTC) - timedelta(days=40), scheduled_for=datetime.now(UTC) - timedelta(days=40),
    )
    JobExecution.objects.filter(pk=old.pk).update(created_at=datetime.now(UTC) - timedelta(days=40))
    url = api_server.serve_json("/schedules", EXAMPLE)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    instance = cluster.start("periodic", ENABLE_API_SYNC="true", API_URL=url, API_SYNC_INTERVAL="60",
                             HISTORY_RETENTION_DAYS="30", AUDIT_RETENTION_DAYS="30", METRICS_PORT=str(port),
                             METRICS_ADDR="127.0.0.1")
    cluster.wait_until_loaded(instance)
    wait_until(lambda: Schedule.objects.filter(domain_config_id="abc-123").exists()
               and not JobExecution.objects.filter(pk=old.pk).exists()
               and AuditEntry.objects.filter(action="prune").exists(), timeout=15, message=instance.log)
    assert not AuditEntry.objects.filter(model="schedule", object_id=str(old_entry.pk), action="create").exists()
    assert verify_chain().intact
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "scanner_schedules_loaded" in body and "scanner_sync_entries_total" in body
    assert cluster.terminate(instance) == 0
    assert json.dumps(EXAMPLE["data"][0]["data"]["customPages"]) in json.dumps(
        Schedule.objects.get(domain_config_id="abc-123").scan_settings)
