"""The audit trail covers every write path: admin forms, bulk actions, the
importer, the Python API, QuerySet.update()/bulk_update()/bulk_create()/
delete(), and pauses. Alert channels and pause rows: test_audit_coverage.py;
the chain: test_audit_chain.py; retention: test_audit_retention.py."""

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from pauses.services import pause_schedules
from schedules.importer.apply import import_entries
from schedules.models import ScanProfile, Schedule
from tests.api_server import entry
from tests.test_admin import _form

pytestmark = pytest.mark.django_db


def trail(obj_or_pk):
    pk = getattr(obj_or_pk, "pk", obj_or_pk)
    return list(AuditEntry.objects.filter(object_id=pk).order_by("id"))


def test_an_admin_form_edit_is_the_users_with_before_and_after(admin_client, admin_user, make_schedule):
    schedule = make_schedule()
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    assert admin_client.post(url, _form(schedule, time_config='{"hour": 4, "minute": 15}')).status_code == 302
    last = trail(schedule)[-1]
    assert (last.action, last.actor_kind, last.actor) == ("update", "user", admin_user.username)
    assert last.changes["time_config"] == [{"hour": 2, "minute": 0}, {"hour": 4, "minute": 15}]
    assert last.changes["edited_manually"] == [False, True]
    assert "next_run" not in last.changes and "updated_at" not in last.changes
    page = admin_client.get(url).content.decode()
    assert "Audit trail" in page and "time_config" in page and "user (admin form): admin" in page


def test_a_bulk_action_is_recorded_per_row(admin_client, make_schedule):
    a, b = make_schedule(), make_schedule()
    admin_client.post(reverse("admin:schedules_schedule_changelist"),
                      {"action": "disable_schedules", "_selected_action": [a.pk, b.pk]})
    for schedule in (a, b):
        last = trail(schedule)[-1]
        assert (last.actor_kind, last.actor) == ("bulk_action", "admin: disable_schedules")
        assert last.changes == {"enabled": [True, False]}


def test_the_importer_is_recorded_as_api_sync():
    import_entries(entries=[entry("imp-1", "a.example.com")])
    schedule = Schedule.objects.get(domain_config_id="imp-1")
    import_entries(entries=[entry("imp-1", "b.example.com")])
    created, updated = trail(schedule)
    assert (created.action, created.actor_kind) == ("create", "api_sync")
    assert created.changes["domain"] == [None, "a.example.com"]
    assert (updated.action, updated.actor_kind, updated.changes["domain"]) == (
        "update", "api_sync", ["a.example.com", "b.example.com"])


def test_python_api_paths_including_queryset_update_and_bulk_writes(make_schedule):
    profile = ScanProfile.objects.create(name="deep", max_pages=10)
    schedule = make_schedule(profile=profile)
    Schedule.objects.filter(pk=schedule.pk).update(domain="moved.example.com")
    schedule.refresh_from_db()
    schedule.frequency, schedule.time_config = "hourly", {"minute": 5}
    Schedule.objects.bulk_update([schedule], fields=["frequency", "time_config"])
    Schedule.objects.filter(pk=schedule.pk).update(last_status="failed", next_run=timezone.now())  # bookkeeping
    ScanProfile.objects.filter(pk=profile.pk).update(max_pages=20)
    profile_id = profile.pk
    profile.delete()
    [bulk] = Schedule.objects.bulk_create([Schedule(domain_config_id="bulk-1", domain="bulk.example.com",
                                                    frequency="daily", time_config={"hour": 1, "minute": 0})])
    Schedule.objects.filter(pk=bulk.pk).delete()  # a QuerySet delete keeps bulk.pk

    actions = [(e.action, e.actor_kind, sorted(e.changes)) for e in trail(schedule)]
    assert actions == [
        ("create", "python", actions[0][2]),
        ("update", "python", ["domain"]),
        ("update", "python", ["frequency", "time_config"]),
        ("update", "python", ["profile_id"]),  # its profile was deleted
    ]
    assert [e.action for e in trail(profile_id)] == ["create", "update", "delete"]
    assert trail(profile_id)[1].changes == {"max_pages": [10, 20]}
    assert [(e.action, e.object_label) for e in trail(bulk)] == [
        ("create", "bulk.example.com (bulk-1)"), ("delete", "bulk.example.com (bulk-1)")]


def test_pause_and_resume_are_in_the_trail(make_schedule):
    schedule = make_schedule()
    pause_schedules(schedule_ids=[schedule.pk], reason="owner asked", paused_by="ops")
    last = trail(schedule)[-1]
    assert last.action == "pause" and last.changes["paused"][1].startswith("owner asked")


def test_the_admin_list_is_read_only(admin_client, make_schedule):
    make_schedule()
    listing = admin_client.get(reverse("admin:audit_auditentry_changelist"))
    assert listing.status_code == 200 and b"Python API" in listing.content
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403

