"""What a first-time admin user tripped over (issue 14), each fixed."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from history.models import JobExecution
from history.wording import duration_in_words, lateness
from schedules.timing.triggers import describe
from tests.cluster import ROOT
from tests.test_admin import _form

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(days=2522, hours=7), "6 years"),
    (timedelta(minutes=4, seconds=10), "4 minutes"),
    (timedelta(seconds=12.4), "12 s"),
    (timedelta(hours=1, minutes=59), "1 hour"),
])
def test_durations_read_as_words(delta, words):
    assert duration_in_words(delta) == words


def test_lateness_words():
    slot = timezone.now()
    assert lateness(scheduled_for=slot, started_at=slot + timedelta(minutes=4)) == "started 4 minutes late"
    assert lateness(scheduled_for=slot, started_at=slot + timedelta(milliseconds=300)) == "on time"
    assert lateness(scheduled_for=None, started_at=slot) == ""


def test_intervals_are_singular_for_one():
    assert describe("interval", {"minutes": 1}, "UTC") == "Every 1 minute"
    assert describe("interval", {"hours": 1, "minutes": 30}, "UTC") == "Every 1 hour 30 minutes"


def test_the_empty_add_form_has_a_generated_config_id_and_no_premature_error(admin_client):
    page = admin_client.get(reverse("admin:schedules_schedule_add")).content.decode()
    assert "Invalid" not in page and "Shown after saving." in page
    assert 'value="manual-' in page and "the API import never touches it" in page


def test_invalid_json_gives_one_clear_error(admin_client, make_schedule):
    schedule = make_schedule()
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    page = admin_client.post(url, _form(schedule, time_config="{hour: 2")).content.decode()
    assert "time_config: {hour: 2 is not valid JSON" in page
    assert "is required" not in page


def test_times_show_seconds_and_executions_show_lateness(admin_client, make_schedule):
    schedule = make_schedule()
    slot = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    JobExecution.objects.create(schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
                                domain_config_id=schedule.domain_config_id, status="success", scheduled_for=slot,
                                started_at=slot + timedelta(minutes=4, seconds=3), duration_seconds=1.0)
    listing = admin_client.get(reverse("admin:history_jobexecution_changelist")).content.decode()
    assert "started 4 minutes late" in listing
    assert timezone.localtime(slot).strftime("%Y-%m-%d %H:%M:%S") in listing
    schedules = admin_client.get(reverse("admin:schedules_schedule_changelist")).content.decode()
    assert timezone.localtime(schedule.next_run).strftime("%Y-%m-%d %H:%M:%S") in schedules


def test_a_traceback_is_shown_once(admin_client, make_schedule):
    schedule = make_schedule()
    execution = JobExecution.objects.create(
        schedule=schedule, job_id=schedule.job_id, domain=schedule.domain, domain_config_id=schedule.domain_config_id,
        status="failed", started_at=timezone.now(), error_message="boom",
        error_details={"type": "ConnectionError", "traceback": "Traceback (most recent call last):\n  x\n"})
    page = admin_client.get(reverse("admin:history_jobexecution_change", args=[execution.pk])).content.decode()
    assert page.count("Traceback (most recent call last)") == 1
    assert "ConnectionError" in page


def test_the_dashboard_breakdown_adds_up_with_missed_and_skipped(admin_client, make_schedule):
    schedule = make_schedule()
    for status in ("success", "failed", "missed", "missed", "skipped"):
        JobExecution.objects.create(schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
                                    domain_config_id=schedule.domain_config_id, status=status,
                                    started_at=timezone.now() - timedelta(minutes=5))
    page = admin_client.get(reverse("admin-dashboard")).content.decode()
    assert '<span class="missed">2</span> missed' in page and '<span class="skipped">1</span> skipped' in page


def test_sync_without_api_url_says_what_a_web_user_can_do(admin_client, settings):
    settings.API_URL = ""
    response = admin_client.post(reverse("admin:schedules_schedule_sync"), follow=True)
    text = response.content.decode()
    assert "API sync is not set up" in text and "--url" not in text


def test_password_hint_names_the_projects_python(admin_user, capsys):
    call_command("ensureadmin", username=admin_user.username)
    assert ".venv/bin/python manage.py changepassword" in capsys.readouterr().out


def test_no_w040_warning_on_sqlite(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    done = subprocess.run([sys.executable, "manage.py", "check", "--database", "default", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "W040" not in done.stdout + done.stderr, done.stdout + done.stderr
