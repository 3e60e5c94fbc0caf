"""Edits reach a running `runscheduler` without a restart.

The instance reports its loaded jobs (next fire time and snapshot hash) in its
heartbeat record, which is what these tests read.
"""

import time
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_redis import get_redis_connection

from history.models import JobExecution
from schedules.models import ScanProfile, Schedule, SchedulerInstance
from schedules.services import create_schedule, delete_schedule, update_schedule
from tests.cluster import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start_live(tmp_path):
    """Start the "live" instance with extra settings; stopped after the test."""
    cluster = Cluster(tmp=tmp_path, env={"SCAN_RUNNER": "tests.runners.recording_runner", "LOCK_TIMEOUT": "3",
                                         "SCHEDULE_CHECK_INTERVAL": "3", "SHUTDOWN_GRACE_SECONDS": "1"})
    started = []

    def start(**env):
        seed = create_schedule(domain_config_id="seed", domain="seed.example.com", frequency="daily",
                               time_config={"hour": 3, "minute": 0})
        process = cluster.start("live", **env)
        cluster.wait_until_loaded(process)
        wait_for(lambda: str(seed) in jobs())
        started.append(process)
        return process

    yield start
    for process in started:
        assert cluster.terminate(process) == 0
    cluster.stop_all()


@pytest.fixture
def instance(start_live):
    return start_live()


def jobs() -> dict:
    record = SchedulerInstance.objects.filter(instance_id="live").first()
    return (record.status.get("jobs") or {}) if record else {}


def wait_for(condition, timeout: float = 6.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not applied within {timeout} s; loaded jobs: {jobs()}")


def next_fire(schedule_id) -> datetime | None:
    entry = jobs().get(str(schedule_id))
    return datetime.fromisoformat(entry["next"]) if entry and entry["next"] else None


def test_create_edit_disable_enable_delete_are_applied(instance):
    schedule_id = create_schedule(domain_config_id="new", domain="new.example.com", frequency="daily",
                                  time_config={"hour": 4, "minute": 30}, timezone="Europe/Berlin")
    wait_for(lambda: next_fire(schedule_id) is not None)
    assert next_fire(schedule_id).astimezone(timezone.get_fixed_timezone(0)).minute == 30

    update_schedule(schedule_id=schedule_id, time_config={"hour": 4, "minute": 45})
    wait_for(lambda: next_fire(schedule_id) is not None and next_fire(schedule_id).minute == 45)

    update_schedule(schedule_id=schedule_id, enabled=False)
    wait_for(lambda: str(schedule_id) not in jobs())

    update_schedule(schedule_id=schedule_id, enabled=True)
    wait_for(lambda: str(schedule_id) in jobs())

    delete_schedule(schedule_id=schedule_id)
    wait_for(lambda: str(schedule_id) not in jobs())


def test_an_unrelated_edit_does_not_move_the_next_fire_time(instance):
    schedule_id = create_schedule(domain_config_id="steady", domain="steady.example.com", frequency="interval",
                                  time_config={"hours": 6})
    wait_for(lambda: next_fire(schedule_id) is not None)
    before = jobs()[str(schedule_id)]
    # The domain is part of the loaded job (its claims carry it): the job is
    # refreshed, and its next fire stays.
    update_schedule(schedule_id=schedule_id, domain="steady2.example.com")
    wait_for(lambda: jobs()[str(schedule_id)]["hash"] != before["hash"])
    assert jobs()[str(schedule_id)]["next"] == before["next"]


def test_a_profile_change_reaches_the_next_run_of_the_schedules_that_use_it(start_live):
    """No loaded job holds scan settings: each run reads its schedule's
    current row, profile included."""
    from history.queue import queue_manual_run

    start_live(SCAN_RUNNER="tests.runners.settings_echo_runner")
    profile = ScanProfile.objects.create(name="p", max_pages=5)
    schedule_id = create_schedule(domain_config_id="prof", domain="prof.example.com", frequency="daily",
                                  time_config={"hour": 1, "minute": 0}, profile_id=profile.profile_id)
    wait_for(lambda: str(schedule_id) in jobs())
    profile.max_pages = 99
    profile.save()
    queue_manual_run(schedule_id=schedule_id, domain="prof.example.com", domain_config_id="prof", requested_by="t")
    wait_for(lambda: JobExecution.objects.filter(schedule_id=schedule_id, status="success").exists())
    run = JobExecution.objects.get(schedule_id=schedule_id, status="success")
    assert run.metadata["scan_settings"]["maxPages"] == 99


def test_a_rolled_back_edit_publishes_nothing(instance, redis_client):
    pubsub = get_redis_connection("default").pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("scanner:schedule-changes")
    with pytest.raises(RuntimeError), transaction.atomic():
        create_schedule(domain_config_id="ghost", domain="ghost.example.com", frequency="hourly",
                        time_config={"minute": 1})
        raise RuntimeError("rollback")
    assert pubsub.get_message(timeout=0.5) is None
    create_schedule(domain_config_id="real", domain="real.example.com", frequency="hourly", time_config={"minute": 1})
    message = pubsub.get_message(timeout=2)
    assert message and b"schedule_ids" in message["data"] and len(message["data"]) < 200
    pubsub.close()


def test_a_raw_sql_write_past_the_orm_is_picked_up_by_the_full_diff(instance):
    schedule_id = create_schedule(domain_config_id="bulk", domain="bulk.example.com", frequency="daily",
                                  time_config={"hour": 5, "minute": 0})
    wait_for(lambda: next_fire(schedule_id) is not None)
    # Raw SQL records no change and publishes no notice: only the full diff sees it.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE schedules SET time_config = %s WHERE schedule_id = %s",
                       ['{"hour": 5, "minute": 15}', schedule_id])
    wait_for(lambda: next_fire(schedule_id).minute == 15, timeout=8)
    assert "Full diff fixed 1 job(s)" in instance.log()


def test_changes_arrive_by_notice_within_the_poll_interval(start_live):
    """With the change-log poll and the full diff slowed to minutes, only the
    Redis notice can deliver these within the wait."""
    process = start_live(CHANGE_POLL_INTERVAL="120", SCHEDULE_CHECK_INTERVAL="600")
    schedule_id = create_schedule(domain_config_id="noticed", domain="noticed.example.com", frequency="daily",
                                  time_config={"hour": 9, "minute": 0})
    wait_for(lambda: next_fire(schedule_id) is not None)
    update_schedule(schedule_id=schedule_id, time_config={"hour": 9, "minute": 20})
    wait_for(lambda: next_fire(schedule_id).minute == 20)
    log = process.log()
    assert f"Applied add of schedule {schedule_id} (notice)" in log
    assert f"Applied reschedule of schedule {schedule_id} (notice)" in log


def test_bulk_deletes_without_redis_are_applied_by_the_change_log(start_live):
    """No Redis and no full diff for ten minutes: a queryset delete hidden by a
    create in the same transaction (the row count stays the same) still stops
    the deleted schedule within the poll, by id."""
    process = start_live(REDIS_URL="", SCHEDULE_CHECK_INTERVAL="600")
    doomed = [create_schedule(domain_config_id=f"doomed-{n}", domain=f"doomed{n}.example.com", frequency="daily",
                              time_config={"hour": 10, "minute": n}) for n in range(2)]
    wait_for(lambda: all(str(sid) in jobs() for sid in doomed))
    with transaction.atomic():
        Schedule.objects.filter(schedule_id__in=doomed).delete()
        for n in range(2):
            create_schedule(domain_config_id=f"newborn-{n}", domain=f"newborn{n}.example.com", frequency="daily",
                            time_config={"hour": 11, "minute": n})
    wait_for(lambda: not any(str(sid) in jobs() for sid in doomed), timeout=5)
    log = process.log()
    for sid in doomed:
        assert f"Applied remove of schedule {sid} (change-log)" in log
    assert "Full diff" not in log


def test_a_notice_lost_while_the_subscriber_is_disconnected_is_repaired(instance, redis_client):
    schedule_id = create_schedule(domain_config_id="lost", domain="lost.example.com", frequency="daily",
                                  time_config={"hour": 6, "minute": 0})
    wait_for(lambda: next_fire(schedule_id) is not None)
    redis_client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    update_schedule(schedule_id=schedule_id, time_config={"hour": 6, "minute": 10})
    wait_for(lambda: next_fire(schedule_id).minute == 10)


def test_admin_run_now_is_picked_up_by_exactly_one_instance(instance, client):
    schedule_id = create_schedule(domain_config_id="manual", domain="manual.example.com", frequency="daily",
                                  time_config={"hour": 7, "minute": 0})
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests"))
    response = client.post(reverse("admin:schedules_schedule_changelist"),
                           {"action": "run_now", "_selected_action": [schedule_id]}, follow=True)
    assert b"Queued 1 manual run" in response.content
    wait_for(lambda: JobExecution.objects.filter(trigger="manual", status="success").exists())
    execution = JobExecution.objects.get(trigger="manual")
    assert execution.instance_id == "live" and execution.schedule_id == schedule_id
    assert execution.metadata["requested_by"] == "root"


def test_admin_run_now_without_a_live_instance_says_so(client, db):
    schedule_id = create_schedule(domain_config_id="nobody", domain="nobody.example.com", frequency="daily",
                                  time_config={"hour": 7, "minute": 0})
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests"))
    response = client.post(reverse("admin:schedules_schedule_changelist"),
                           {"action": "run_now", "_selected_action": [schedule_id]}, follow=True)
    assert b"No scheduler instance is running, so nothing was queued" in response.content
    assert not JobExecution.objects.exists()


def test_an_edit_saved_in_admin_reaches_the_running_instance(instance, client):
    schedule_id = create_schedule(domain_config_id="via-admin", domain="via-admin.example.com", frequency="daily",
                                  time_config={"hour": 8, "minute": 0})
    wait_for(lambda: next_fire(schedule_id) is not None)
    client.force_login(User.objects.create_superuser("editor", password="pw-for-tests"))
    form = {"domain_config_id": "via-admin", "domain": "via-admin.example.com", "profile": "", "enabled": "on",
            "frequency": "daily", "time_config": '{"hour": 8, "minute": 40}', "timezone": "UTC",
            "scan_settings": "{}"}
    response = client.post(reverse("admin:schedules_schedule_change", args=[schedule_id]), form)
    assert response.status_code == 302
    wait_for(lambda: next_fire(schedule_id).minute == 40)
