"""A visible backlog: queue depth and the oldest queued slot's age on the
dashboard, in /metrics and in /healthz (degraded, not down, past
QUEUE_WARN_SECONDS), and each execution's start delay in admin."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from schedules.models import SchedulerInstance
from tests.history_factories import make_execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def backlog(make_schedule, settings):
    """Three slots waiting for a worker, the oldest for 10 minutes; one slot
    that started 90 s after its time."""
    settings.QUEUE_WARN_SECONDS = 300
    now = timezone.now()
    schedule = make_schedule()
    for ago in (600, 60, 5):
        make_execution(schedule=None, status="queued", now=now, ago=timedelta(seconds=ago),
                       scheduled_for=now - timedelta(seconds=ago))
    late = make_execution(schedule=schedule, status="success", now=now, ago=timedelta(minutes=20), duration=3,
                          scheduled_for=now - timedelta(minutes=20, seconds=90))
    SchedulerInstance.objects.create(instance_id="host-1", host="h", pid=1, started_at=now, last_seen=now)
    return late


def test_the_dashboard_shows_the_queue_and_the_start_delay_chart(admin_client, backlog):
    response = admin_client.get(reverse("admin-dashboard"))
    html = response.content.decode()
    assert response.context["queue"]["depth"] == 3
    assert 600 <= response.context["queue"]["oldest_seconds"] < 660
    assert '<span class="queue-depth">3</span>' in html
    assert "add workers or instances" in html, "a queue older than QUEUE_WARN_SECONDS is called out"
    delay_chart = html.split('id="start-delay"')[1].split("</svg>")[0]
    assert "Start delay per hour" in delay_chart and 'class="line line-maximum"' in delay_chart
    assert "100 s" in delay_chart, "the 90 s delay sets the axis"


def test_metrics_expose_queue_depth_and_oldest_age(backlog):
    body = Client().get("/metrics").content.decode()
    assert re.search(r"^scanner_queue_depth 3\.0$", body, re.M), body
    oldest = float(re.search(r"^scanner_queue_oldest_seconds (\S+)$", body, re.M).group(1))
    assert 600 <= oldest < 660


@pytest.mark.django_db(transaction=True)  # /healthz reads in its own thread and connection
def test_healthz_is_degraded_not_down_while_the_queue_is_late(backlog, settings):
    settings.HEALTHZ_TOKEN = "queue-test-token"
    monitor = {"HTTP_AUTHORIZATION": "Bearer queue-test-token"}
    response = Client().get("/healthz", **monitor)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded", body
    assert body["queue"]["status"] == "degraded" and body["queue"]["depth"] == 3
    assert Client().get("/healthz").json() == {"status": "degraded"}, "anonymous callers see the status only"
    settings.QUEUE_WARN_SECONDS = 3600
    body = Client().get("/healthz", **monitor).json()
    assert body["status"] == "ok" and body["queue"]["status"] == "ok"


def test_each_execution_shows_its_start_delay_in_admin(admin_client, backlog):
    from history.wording import lateness

    html = admin_client.get(reverse("admin:history_jobexecution_changelist")).content.decode()
    late = lateness(scheduled_for=backlog.scheduled_for, started_at=backlog.started_at)
    assert late.startswith("started ") and late in html, "the list says how late each run started"
    assert html.count("waiting for a free worker") == 3, "a queued slot has not started: no lateness yet"
    detail = admin_client.get(reverse("admin:history_jobexecution_change", args=[backlog.pk])).content.decode()
    assert "90.00 s" in detail
    assert backlog.start_delay == timedelta(seconds=90)
    # How often workers took it (above 1: its instance died and it was put back).
    assert re.search(r"Deliveries:</label>\s*<div class=\"readonly\">0<", detail), "deliveries shown"
