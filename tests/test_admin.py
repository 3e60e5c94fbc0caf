from datetime import datetime, timezone

import pytest
from django.urls import reverse

from history.models import JobExecution
from schedules.models import ScanProfile, Schedule

pytestmark = pytest.mark.django_db




def test_schedule_list_shows_words_and_state(admin_client, make_schedule):
    make_schedule(domain="example.com", timezone="Europe/Berlin", time_config={"hour": 2, "minute": 0})
    response = admin_client.get(reverse("admin:schedules_schedule_changelist"))
    assert response.status_code == 200
    assert b"Daily at 02:00 Europe/Berlin" in response.content
    response = admin_client.get(reverse("admin:schedules_schedule_changelist"), {"q": "example.com", "frequency__exact": "daily"})
    assert b"example.com" in response.content


def test_change_form_shows_next_five_runs(admin_client, make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"minutes": 30})
    response = admin_client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk]))
    assert response.status_code == 200
    assert response.content.count(b"<small>(UTC)</small>") == 5


def _form(schedule, **overrides):
    data = {
        "domain_config_id": schedule.domain_config_id,
        "domain": schedule.domain,
        "profile": "",
        "enabled": "on",
        "frequency": schedule.frequency,
        "time_config": '{"hour": 2, "minute": 0}',
        "timezone": schedule.timezone,
        "scan_settings": "{}",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"time_config": '{"hour": 25, "minute": 0}'}, b"time_config.hour: 25 is out of range 0-23"),
        ({"time_config": '{"hour": 2,'}, b"time_config: {&quot;hour&quot;: 2, is not valid JSON"),
        ({"timezone": "Europe/Atlantis"}, b"&#x27;Europe/Atlantis&#x27; is not an IANA time zone"),
        ({"domain": "http://example.com/x"}, b"is not a host name"),
        ({"frequency": "cron", "time_config": '{"expression": "0 0 * * * *"}'}, b"has 6 fields"),
    ],
)
def test_change_form_rejects_invalid_values_with_field_errors(admin_client, make_schedule, overrides, message):
    schedule = make_schedule()
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    response = admin_client.post(url, _form(schedule, **overrides))
    assert response.status_code == 200
    assert message in response.content
    stored = Schedule.objects.get(pk=schedule.pk)
    assert (stored.time_config, stored.timezone, stored.domain, stored.edited_manually) == (
        {"hour": 2, "minute": 0}, "UTC", schedule.domain, False
    )


def test_saving_in_admin_marks_the_schedule_as_edited_by_hand(admin_client, make_schedule):
    schedule = make_schedule()
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    response = admin_client.post(url, _form(schedule, time_config='{"hour": 4, "minute": 15}'))
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.time_config == {"hour": 4, "minute": 15}
    assert schedule.edited_manually is True
    assert schedule.next_run.hour == 4


def test_enable_and_disable_actions(admin_client, make_schedule):
    a, b = make_schedule(), make_schedule()
    url = reverse("admin:schedules_schedule_changelist")
    admin_client.post(url, {"action": "disable_schedules", "_selected_action": [a.pk, b.pk]})
    assert Schedule.objects.filter(enabled=False).count() == 2
    assert set(Schedule.objects.values_list("next_run", flat=True)) == {None}
    stale = datetime(2020, 1, 1, tzinfo=timezone.utc)
    Schedule.objects.filter(pk=a.pk).update(next_run=stale)
    admin_client.post(url, {"action": "enable_schedules", "_selected_action": [a.pk]})
    assert set(Schedule.objects.filter(enabled=True).values_list("pk", flat=True)) == {a.pk}
    a.refresh_from_db()
    assert a.next_run == a.compute_next_run() and a.next_run > datetime.now(timezone.utc), \
        "enabling writes a fresh next_run, never leaves a stale one"


def test_profiles_are_editable(admin_client):
    url = reverse("admin:schedules_scanprofile_add")
    response = admin_client.post(url, {"name": "default", "description": "", "max_pages": 20, "scan_depth": 3,
                                       "max_retries": 2, "custom_pages": '["/privacy"]', "accept_selector": "#accept"})
    assert response.status_code == 302
    assert ScanProfile.objects.get().custom_pages == ["/privacy"]
    response = admin_client.post(url, {"name": "bad", "max_pages": 20, "scan_depth": 3, "max_retries": 2,
                                       "custom_pages": '["privacy"]', "accept_selector": ""})
    assert b"custom_pages: [&#x27;privacy&#x27;] must be a list of paths" in response.content


def test_executions_are_read_only_and_listed(admin_client, make_schedule):
    schedule = make_schedule()
    started = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
    execution = JobExecution.objects.create(
        schedule=schedule, job_id=schedule.job_id, domain=schedule.domain, domain_config_id=schedule.domain_config_id,
        status="failed", started_at=started, scheduled_for=started, duration_seconds=1.5, error_message="boom",
    )
    listing = admin_client.get(reverse("admin:history_jobexecution_changelist"), {"status__exact": "failed"})
    assert listing.status_code == 200
    assert b"1.50 s" in listing.content and b"boom" in listing.content
    detail = admin_client.get(reverse("admin:history_jobexecution_change", args=[execution.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert admin_client.get(reverse("admin:history_jobexecution_add")).status_code == 403
    response = admin_client.post(reverse("admin:history_jobexecution_delete", args=[execution.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert JobExecution.objects.filter(pk=execution.pk).exists()


def test_staff_without_permissions_sees_nothing(client, staff, make_schedule):
    schedule = make_schedule()
    staff()
    assert client.get(reverse("admin:schedules_schedule_changelist")).status_code == 403
    assert client.get(reverse("admin:history_jobexecution_changelist")).status_code == 403
    assert client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk])).status_code == 403


def test_view_only_staff_cannot_change_schedules(client, staff, make_schedule):
    schedule = make_schedule()
    staff("view_schedule", "view_jobexecution")
    assert client.get(reverse("admin:schedules_schedule_changelist")).status_code == 200
    assert client.get(reverse("admin:history_jobexecution_changelist")).status_code == 200
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    response = client.post(url, _form(schedule, time_config='{"hour": 9, "minute": 0}'))
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.time_config == {"hour": 2, "minute": 0}
    response = client.post(reverse("admin:schedules_schedule_changelist"),
                           {"action": "disable_schedules", "_selected_action": [schedule.pk]})
    schedule.refresh_from_db()
    assert schedule.enabled is True
