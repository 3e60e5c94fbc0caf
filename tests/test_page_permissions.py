"""Each section of an admin page shows another model's data only to those who
may view that model: on a schedule's page the audit trail needs
audit.view_auditentry and the pause record pauses.view_schedulepause (the run
history already needed history.view_jobexecution). With only view_schedule,
both used to show."""

import pytest
from django.contrib import admin
from django.urls import reverse

from pauses.services import pause_schedules

pytestmark = pytest.mark.django_db


@pytest.fixture
def paused(make_schedule):
    schedule = make_schedule(domain="shop.example.com", domain_config_id="cfg-shop")
    pause_schedules(schedule_ids=[schedule.pk], reason="maintenance window of secret-backend", resume_at=None,
                    paused_by="ops")
    return schedule


def _page(client, schedule) -> str:
    response = client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_view_schedule_alone_shows_neither_the_audit_nor_the_pause_section(client, staff, paused):
    staff("view_schedule")
    body = _page(client, paused)
    assert "shop.example.com" in body
    assert "audit-trail" not in body and "pause-record" not in body
    assert "secret-backend" not in body and "No recorded changes" not in body


@pytest.mark.parametrize("codename, shown, hidden", [
    ("view_auditentry", "audit-trail", "pause-record"),
    ("view_schedulepause", "pause-record", "audit-trail"),
])
def test_each_section_needs_the_view_permission_of_its_data(client, staff, paused, codename, shown, hidden):
    staff("view_schedule", codename)
    body = _page(client, paused)
    assert shown in body and hidden not in body


def test_the_profile_page_audit_section_needs_the_audit_permission(client, staff):
    from schedules.models import ScanProfile

    profile = ScanProfile.objects.create(name="standard")
    page = reverse("admin:schedules_scanprofile_change", args=[profile.pk])
    staff("view_scanprofile")
    assert "audit-trail" not in client.get(page).content.decode()
    staff("view_scanprofile", "view_auditentry")
    assert "audit-trail" in client.get(page).content.decode()


def test_a_superuser_sees_every_section(admin_client, paused):
    body = _page(admin_client, paused)
    assert "audit-trail" in body and "pause-record" in body and "No runs yet." in body


def test_every_page_section_of_every_admin_names_the_permission_it_needs():
    for model, model_admin in admin.site._registry.items():
        for cls in type(model_admin).__mro__:
            title = getattr(cls, "section_title", None) if "section_title" in vars(cls) else None
            if title is None:
                continue
            needed = cls.section_permission or getattr(model_admin, "section_permissions", {}).get(title)
            assert needed and needed.split(".")[1].startswith("view_"), (model, title)
