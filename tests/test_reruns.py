"""Re-running missed slots: each missed slot is queued at most once, runs
once across three instances, and its missed row stays in the history."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from history.models import JobExecution
from reruns.models import SlotRerun
from reruns.services import queue_missed_slots
from schedules.models import Schedule
from tests.cluster import Cluster, read_runs
from tests.waiting import wait_until

NOW = timezone.now().replace(microsecond=0)


def missed(schedule, *, hours_ago: float, status="missed"):
    slot = NOW - timedelta(hours=hours_ago)
    return JobExecution.objects.create(
        schedule=schedule, job_id=schedule.job_id, domain=schedule.domain, domain_config_id=schedule.domain_config_id,
        status=status, trigger="scheduled", scheduled_for=slot, started_at=slot, completed_at=slot,
        error_message="missed by 6 minutes: later than the grace time")


def seed(make_schedule):
    a, b, other = make_schedule(), make_schedule(), make_schedule()
    rows = [missed(a, hours_ago=1), missed(a, hours_ago=2), missed(b, hours_ago=3)]
    missed(a, hours_ago=30)  # outside the period
    missed(a, hours_ago=4, status="failed")  # not missed
    missed(other, hours_ago=1)  # not chosen
    return [a, b], rows


@pytest.mark.django_db
def test_missed_slots_in_the_period_are_queued_once(make_schedule):
    schedules, rows = seed(make_schedule)
    ids = [s.pk for s in schedules]
    result = queue_missed_slots(schedule_ids=ids, since=NOW - timedelta(days=1), until=NOW, requested_by="ops")
    assert (result.queued, result.already_queued) == (3, 0)
    # One at a time per schedule: a's earlier slot first, and b's.
    queued = JobExecution.objects.filter(status="queued")
    assert sorted(q.metadata["rerun_of"] for q in queued) == sorted(str(r.pk) for r in (rows[1], rows[2]))
    assert all(q.trigger == "manual" and q.metadata["requested_by"] == "ops" for q in queued)
    again = queue_missed_slots(schedule_ids=ids, since=NOW - timedelta(days=2), until=NOW, requested_by="ops")
    assert (again.queued, again.already_queued) == (1, 3)  # only the older slot is new
    assert JobExecution.objects.filter(status="missed").count() == 5  # the missed rows stay as they were


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_queue_each_slot_once(make_schedule):
    schedules, rows = seed(make_schedule)
    results, start = [], threading.Barrier(4)

    def request():
        start.wait()
        try:
            results.append(queue_missed_slots(schedule_ids=[s.pk for s in schedules], since=NOW - timedelta(days=1),
                                              until=NOW, requested_by="ops"))
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r.queued for r in results) == 3 and sum(r.already_queued for r in results) == 9
    assert SlotRerun.objects.count() == 3
    assert JobExecution.objects.filter(status="queued").count() == 2  # one per schedule at a time


@pytest.mark.django_db
def test_admin_action_asks_for_the_period_then_queues(admin_client, make_schedule):
    schedules, _ = seed(make_schedule)
    url = reverse("admin:schedules_schedule_changelist")
    selected = [s.pk for s in schedules]
    form = admin_client.post(url, {"action": "rerun_missed", "_selected_action": selected})
    assert b"Re-run missed slots" in form.content and b'name="since"' in form.content
    refused = admin_client.post(url, {"action": "rerun_missed", "_selected_action": selected, "apply": "1",
                                      "since": "2026-11-20T10:00", "until": "2026-11-20T09:00"})
    assert b"until: 2026-11-20T09:00:00" in refused.content and not SlotRerun.objects.exists()
    since = timezone.localtime(NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    until = timezone.localtime(NOW + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    done = admin_client.post(url, {"action": "rerun_missed", "_selected_action": selected, "apply": "1",
                                   "since": since, "until": until}, follow=True)
    assert b"Queued 3 missed slot(s) to run again, one at a time per schedule" in done.content


@pytest.mark.django_db
def test_command_queues_named_schedules_and_names_bad_input(make_schedule, capsys):
    schedules, _ = seed(make_schedule)
    since = (NOW - timedelta(days=1)).isoformat()
    call_command("rerunmissed", schedules[0].domain_config_id, "--since", since, "--dry-run")
    assert "Would queue up to 2 missed slot(s)" in capsys.readouterr().out
    call_command("rerunmissed", schedules[0].domain_config_id, "--since", since)
    assert "Queued 2 missed slot(s); 0 were queued before." in capsys.readouterr().out
    with pytest.raises(CommandError, match="no schedule with domain_config_id 'nope'"):
        call_command("rerunmissed", "nope", "--since", since)
    with pytest.raises(CommandError, match="'yesterday' is not a date and time"):
        call_command("rerunmissed", "--all", "--since", "yesterday")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_instances_run_each_requeued_slot_once(tmp_path):
    runs = tmp_path / "runs.txt"
    cluster = Cluster(tmp=tmp_path, env={"SCAN_RUNNER": "tests.runners.recording_runner",
                                         "SCAN_TEST_RUNS_FILE": str(runs), "LOCK_TIMEOUT": "3"})
    try:
        schedules = []
        for n in range(4):
            schedule = Schedule(domain_config_id=f"rerun-{n}", domain=f"rerun{n}.example.com", frequency="daily",
                                time_config={"hour": 2, "minute": 0})
            schedule.save()
            schedules.append(schedule)
        slots = [missed(s, hours_ago=h) for s in schedules for h in (1, 2, 3)]
        queue_missed_slots(schedule_ids=[s.pk for s in schedules], since=NOW - timedelta(days=1), until=NOW,
                           requested_by="ops")
        for n in range(3):
            cluster.start(f"rerun-{n}")
        wait_until(lambda: JobExecution.objects.filter(trigger="manual", status="success").count() == len(slots),
                   timeout=90, message=lambda: str(list(JobExecution.objects.filter(trigger="manual")
                                                         .values_list("status", flat=True))))
        manual_runs = [line for line in read_runs(runs) if line[1] == "manual"]
        assert len(manual_runs) == len(slots)
        assert JobExecution.objects.filter(status="missed").count() == len(slots)
    finally:
        cluster.stop_all()
