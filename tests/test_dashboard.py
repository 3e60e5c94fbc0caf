from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from schedules.admin.dashboard import dashboard_context
from schedules.instances import live_instances
from schedules.models import SchedulerInstance
from tests.history_factories import make_execution

pytestmark = pytest.mark.django_db


def _instance(instance_id, *, seen_ago, stopped=False):
    now = timezone.now()
    return SchedulerInstance.objects.create(
        instance_id=instance_id, host="host", pid=1, started_at=now - timedelta(hours=1),
        last_seen=now - timedelta(seconds=seen_ago), stopped_at=now if stopped else None, jobs_loaded=3,
    )


@pytest.fixture
def seeded(make_schedule):
    now = timezone.now()
    shop = make_schedule(domain="shop.example.com", time_config={"hour": 3, "minute": 0})
    blog = make_schedule(domain="blog.example.com", time_config={"hour": 2, "minute": 0})
    make_execution(schedule=shop, status="success", now=now, ago=timedelta(hours=2), duration=10)
    make_execution(schedule=shop, status="failed", now=now, ago=timedelta(hours=3), duration=30)
    make_execution(schedule=shop, status="failed", now=now, ago=timedelta(days=2), duration=20)
    make_execution(schedule=blog, status="success", now=now, ago=timedelta(days=3), duration=40)
    make_execution(schedule=blog, status="missed", now=now, ago=timedelta(days=20))
    disabled = make_schedule(domain="off.example.com", enabled=False)
    _instance("alive-1", seen_ago=2)
    _instance("stale-2", seen_ago=600)
    _instance("stopped-3", seen_ago=1, stopped=True)
    return shop, blog, disabled


def test_dashboard_numbers_charts_next_runs_and_instances(admin_client, seeded):
    shop, blog, disabled = seeded
    response = admin_client.get(reverse("admin-dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    windows = {w["label"]: w for w in response.context["windows"]}
    assert (windows["24 hours"]["total_executions"], windows["24 hours"]["success_rate"]) == (2, 50.0)
    assert (windows["7 days"]["total_executions"], windows["7 days"]["failed"], windows["7 days"]["success_rate"]) == (
        4, 2, 50.0)
    assert (windows["30 days"]["total_executions"], windows["30 days"]["success_rate"]) == (5, 40.0)
    assert (windows["7 days"]["avg_duration"], windows["7 days"]["min_duration"],
            windows["7 days"]["max_duration"]) == (25.0, 10.0, 40.0)
    assert '<span class="success-rate">40.0</span>' in html
    assert html.count('<svg class="chart"') == 3  # outcomes, durations, start delay
    assert html.count('class="bar bar-failed"') == 2 and 'class="line line-average"' in html
    assert "<script" not in html.split('id="dashboard"')[1]  # charts need no JavaScript
    failing = response.context["failing"]
    assert [(r["domain"], r["failed"], r["total"]) for r in failing] == [("shop.example.com", 2, 3)]
    assert [s.domain for s in response.context["next_runs"]] == ["blog.example.com", "shop.example.com"]
    assert [i.instance_id for i in response.context["instances"]] == ["alive-1"]
    assert "alive-1" in html and "stale-2" not in html and "stopped-3" not in html


def test_next_runs_are_the_ten_soonest(admin_client, make_schedule):
    for hour in range(12):
        make_schedule(domain=f"h{hour:02d}.example.com", time_config={"hour": hour, "minute": 30})
    now = timezone.now()
    runs = dashboard_context(now=now)["next_runs"]
    assert len(runs) == 10
    assert [s.next_run for s in runs] == sorted(s.next_run for s in runs)


def test_empty_dashboard_renders(admin_client):
    response = admin_client.get(reverse("admin-dashboard"))
    assert response.status_code == 200
    assert b"No failures in the last 7 days." in response.content
    assert b"No scheduler instance has sent a heartbeat" in response.content
    assert response.content.count(b'<svg class="chart"') == 3


def test_live_instance_uses_the_stale_setting(settings):
    _instance("a", seen_ago=10)
    settings.INSTANCE_STALE_SECONDS = 15
    assert [i.instance_id for i in live_instances()] == ["a"]
    settings.INSTANCE_STALE_SECONDS = 5
    assert list(live_instances()) == []


def test_staff_only_and_linked_from_the_index(client, admin_client):
    url = reverse("admin-dashboard")
    assert url == "/admin/dashboard/"
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("plain", password="pw-for-tests", is_staff=False)
    client.login(username="plain", password="pw-for-tests")
    assert client.get(url).status_code == 302
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{url}"><strong>Scheduler dashboard</strong></a>' in index
    assert "Schedules" in index  # the stock index is still there
