"""Pausing with a note: slots in the pause are recorded skipped with the
reason (no silent gaps), and the schedule resumes by itself."""

import uuid
from datetime import timedelta
from itertools import pairwise

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from history.models import JobExecution
from pauses.models import SchedulePause
from pauses.selectors import paused_reason
from pauses.services import pause_schedules, resume_schedules
from schedules.models import Schedule
from tests.cluster import Cluster, read_runs
from tests.waiting import wait_until

NOW = timezone.now().replace(microsecond=0)


@pytest.mark.django_db
@pytest.mark.parametrize(("reason", "resume_at", "error"), [
    ("  ", None, "reason: say why"),
    ("maintenance", NOW - timedelta(minutes=1), "resume_at: .* is not in the future"),
])
def test_a_pause_without_a_reason_or_with_a_past_resume_time_is_refused(make_schedule, reason, resume_at, error):
    schedule = make_schedule()
    with pytest.raises(ValidationError, match=error):
        pause_schedules(schedule_ids=[schedule.pk], reason=reason, resume_at=resume_at, paused_by="ops", now=NOW)
    assert not SchedulePause.objects.exists()


@pytest.mark.django_db
def test_a_pause_covers_its_window_and_ends_at_its_resume_time(make_schedule):
    schedule = make_schedule()
    assert pause_schedules(schedule_ids=[schedule.pk, schedule.pk], reason="site migration", paused_by="ops",
                           resume_at=NOW + timedelta(hours=1), now=NOW) == 1
    assert paused_reason(schedule_id=schedule.pk, at=NOW - timedelta(seconds=1)) == ""
    assert paused_reason(schedule_id=schedule.pk, at=NOW + timedelta(minutes=30)).startswith("paused by ops until")
    assert paused_reason(schedule_id=schedule.pk, at=NOW + timedelta(hours=1)) == ""
    # Pausing again after it ended by itself starts a new pause; the old one is closed.
    later = NOW + timedelta(hours=2)
    assert pause_schedules(schedule_ids=[schedule.pk], reason="again", paused_by="ops", now=later) == 1
    assert list(SchedulePause.objects.order_by("id").values_list("resumed_by", flat=True)) == ["automatic", ""]
    assert resume_schedules(schedule_ids=[schedule.pk], resumed_by="ops", now=later + timedelta(minutes=5)) == 1
    assert paused_reason(schedule_id=schedule.pk, at=later + timedelta(minutes=6)) == ""
    assert paused_reason(schedule_id=schedule.pk, at=later + timedelta(minutes=1)).endswith(": again")


@pytest.mark.django_db
def test_admin_pauses_with_a_note_and_shows_who_and_why(admin_client, admin_user, make_schedule):
    a, b = make_schedule(), make_schedule()
    url = reverse("admin:schedules_schedule_changelist")
    form = admin_client.post(url, {"action": "pause_selected", "_selected_action": [a.pk, b.pk]})
    assert b"Pausing is not disabling" in form.content and b'name="reason"' in form.content
    refused = admin_client.post(url, {"action": "pause_selected", "_selected_action": [a.pk], "apply": "1",
                                      "reason": ""})
    assert b"This field is required" in refused.content and not SchedulePause.objects.exists()
    done = admin_client.post(url, {"action": "pause_selected", "_selected_action": [a.pk, b.pk], "apply": "1",
                                   "reason": "customer asked to stop scans", "resume_at": ""}, follow=True)
    assert b"Paused 2 schedule(s)" in done.content
    page = admin_client.get(reverse("admin:schedules_schedule_change", args=[a.pk])).content.decode()
    assert "PAUSED" in page and "customer asked to stop scans" in page and admin_user.username in page
    assert Schedule.objects.get(pk=a.pk).enabled  # paused, not disabled
    admin_client.post(url, {"action": "resume_selected", "_selected_action": [a.pk]})
    assert SchedulePause.objects.open().get().schedule_id == b.pk


@pytest.fixture
def cluster(tmp_path):
    runs = tmp_path / "runs.txt"
    c = Cluster(tmp=tmp_path, env={
        "SCAN_RUNNER": "tests.runners.recording_runner", "SCAN_TEST_RUNS_FILE": str(runs),
        "LOCK_TIMEOUT": "3", "JOB_MISFIRE_GRACE_TIME": "30", "SHUTDOWN_GRACE_SECONDS": "5",
    })
    c.runs_file = runs
    yield c
    c.stop_all()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_instances_skip_paused_slots_with_the_reason_and_resume_by_themselves(cluster):
    schedule = Schedule(domain_config_id="paused-1", domain="paused.example.com", frequency="interval",
                        time_config={"seconds": 1})
    schedule.full_clean()
    schedule.save()
    for n in range(3):
        cluster.wait_until_loaded(cluster.start(f"pause-{n}"), timeout=60)
    rows = JobExecution.objects.filter(schedule=schedule, trigger="scheduled")
    wait_until(lambda: rows.filter(status="success").count() >= 2, timeout=60, message="no runs before the pause")
    start = timezone.now()
    resume_at = start + timedelta(seconds=5)
    pause_schedules(schedule_ids=[schedule.pk], reason="DNS move", paused_by="ops", resume_at=resume_at, now=start)
    wait_until(lambda: rows.filter(status="success", scheduled_for__gt=resume_at).count() >= 2, timeout=60,
               message=lambda: f"did not resume: {list(rows.values_list('status', 'scheduled_for'))[-8:]}")

    in_pause = rows.filter(scheduled_for__gte=start, scheduled_for__lt=resume_at)
    slots = sorted(in_pause.values_list("scheduled_for", flat=True))
    assert len(slots) >= 4
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(slots)), "a gap in the history"
    assert set(in_pause.values_list("status", flat=True)) == {"skipped"}
    assert all(m.startswith("paused by ops until") and m.endswith(": DNS move")
               for m in in_pause.values_list("error_message", flat=True))
    ran = {slot for sid, slot, _ in read_runs(cluster.runs_file) if sid == str(schedule.pk)}
    assert not ran & {s.isoformat() for s in slots}, "a paused slot ran"
    wait_until(lambda: SchedulePause.objects.filter(resumed_by="automatic").exists(), timeout=30,
               message="the pause was not closed at its resume time")


@pytest.mark.django_db
def test_the_runtime_asks_about_pauses_only_for_schedules_its_snapshot_names(make_schedule):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from pauses.selectors import SNAPSHOT_LOOKBACK, pause_snapshot
    from schedules.models import ScheduleChange
    from schedules.runtime.specs import load_spec
    from schedules.runtime.take import _skipped_for_pause, see_pauses
    from tests.test_execution import context, ok_runner

    paused, free = make_schedule(), make_schedule()
    pause_schedules(schedule_ids=[paused.pk], reason="owner asked", paused_by="ops", now=NOW)
    # A pause is recorded as a change of its schedule, so that every
    # scheduler takes its snapshot again at once (ChangeFeed on_changes).
    assert set(ScheduleChange.objects.values_list("schedule_id", flat=True)) >= {paused.pk}
    ctx = context(ok_runner)
    ctx.clock = lambda: NOW + timedelta(minutes=1)
    see_pauses(ctx)
    assert ctx.pauses.schedule_ids == {paused.pk}
    slot = NOW + timedelta(seconds=30)

    def pause_queries(spec, at):
        with CaptureQueriesContext(connection) as queries:
            held = _skipped_for_pause(ctx, spec, uuid.uuid4(), at)
        return held, sum("schedule_pauses" in q["sql"] for q in queries.captured_queries)

    assert pause_queries(load_spec(free.pk), slot) == (False, 0), "never paused: no query"
    assert pause_queries(load_spec(paused.pk), slot)[1] == 1
    # Slots older than the snapshot covers, and any slot under a stale
    # snapshot, are asked about one by one.
    assert pause_queries(load_spec(free.pk), NOW - SNAPSHOT_LOOKBACK - timedelta(hours=1)) == (False, 1)
    ctx.clock = lambda: NOW + timedelta(minutes=10)
    assert pause_queries(load_spec(free.pk), slot) == (False, 1)
    # A resumed pause still holds the slots from before its resume.
    resume_schedules(schedule_ids=[paused.pk], resumed_by="ops", now=NOW + timedelta(minutes=2))
    assert paused.pk in pause_snapshot(now=NOW + timedelta(minutes=3)).schedule_ids
    assert paused.pk not in pause_snapshot(now=NOW + timedelta(minutes=3) + SNAPSHOT_LOOKBACK).schedule_ids
