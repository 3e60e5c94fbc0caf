"""Admin pages show only the data the user may view: the dashboard by section,
a schedule's run history only with view permission on executions."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from schedules.models import SchedulerInstance
from tests.history_factories import make_execution

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/dashboard/"


@pytest.fixture
def seeded(make_schedule):
    now = timezone.now()
    shop = make_schedule(domain="shop.example.com", domain_config_id="cfg-shop")
    make_execution(schedule=shop, status="failed", now=now, ago=timedelta(hours=2), duration=3,
                   error_message="TLS handshake to secret-backend.internal failed")
    SchedulerInstance.objects.create(instance_id="inst-7", host="worker-host-7", pid=1, started_at=now,
                                     last_seen=now, jobs_loaded=1)
    return shop


def test_staff_without_permissions_get_403_and_no_data(client, staff, seeded):
    staff()
    response = client.get(DASHBOARD)
    body = response.content.decode()
    assert response.status_code == 403
    for secret in ("shop.example.com", "cfg-shop", "worker-host-7", "inst-7"):
        assert secret not in body


@pytest.mark.parametrize("codename, shown, hidden", [
    ("view_schedule", ["shop.example.com"], ["cfg-shop", "worker-host-7", "success-rate"]),
    ("view_jobexecution", ["cfg-shop", "success-rate"], ["worker-host-7", 'id="next-runs"']),
    ("view_schedulerinstance", ["worker-host-7"], ["shop.example.com", "cfg-shop", "success-rate"]),
])
def test_each_dashboard_section_needs_the_view_permission_of_its_data(client, staff, seeded, codename, shown, hidden):
    staff(codename)
    response = client.get(DASHBOARD)
    body = response.content.decode()
    assert response.status_code == 200
    for text in shown:
        assert text in body, text
    for text in hidden:
        assert text not in body, text


def test_schedule_page_history_needs_view_permission_on_executions(client, staff, seeded):
    page = reverse("admin:schedules_schedule_change", args=[seeded.pk])
    staff("view_schedule")
    body = client.get(page).content.decode()
    assert "shop.example.com" in body
    assert "secret-backend.internal" not in body and "recent-executions" not in body
    staff("view_schedule", "view_jobexecution")
    body = client.get(page).content.decode()
    assert "secret-backend.internal" in body and "recent-executions" in body
