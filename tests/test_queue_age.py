"""One queue age: /healthz, /metrics, the dashboard and the queue alert report
the same age for the same rows, measured on the database's clock."""

import re
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models.functions import Now
from django.test import Client
from django.urls import reverse

from alerts.loop import evaluate
from alerts.models import Alert, AlertKind
from history import queue as queue_store
from history import services
from history.models import ExecutionStatus
from schedules.models import SchedulerInstance

# /healthz reads in its own thread and connection: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "queue-age-test-token"
OLDEST = 1200  # seconds: the row re-queued after a delivery, first queued this long ago


def _db_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def _claim(schedule, *, at: datetime, status: str = ExecutionStatus.QUEUED):
    slot = {"schedule_id": schedule.schedule_id, "domain": schedule.domain,
            "domain_config_id": schedule.domain_config_id, "scheduled_for": at, "status": status}
    return queue_store.claim_slots(slots=[slot], instance_id="host-a", started_at=at)[(schedule.schedule_id, at)]


@pytest.fixture
def queue(make_schedule, settings) -> datetime:
    """Queued rows of different ages, two of them back in the queue after a
    delivery, beside older rows that are not queued. Returns the database's
    "now" the ages are counted from."""
    settings.HEALTHZ_TOKEN = TOKEN
    settings.ALERT_QUEUE_AGE_SECONDS = 600
    settings.QUEUE_WARN_SECONDS = 300
    base = _db_now()
    schedule = make_schedule()
    # Queued 300 s ago, taken, and put back by a live instance after its own stopped beating.
    orphan = _claim(schedule, at=base - timedelta(seconds=300))
    assert [row["execution_id"] for row in queue_store.take_queued(instance_id="host-a", limit=1)] == [orphan]
    assert queue_store.rescue_orphaned(stale_after=timedelta(0), max_deliveries=3) == (1, 0)
    # Queued 1200 s ago (the oldest, so taken next), taken, handed back at shutdown after its scan had started.
    shut_down = _claim(schedule, at=base - timedelta(seconds=OLDEST))
    taken = queue_store.take_queued(instance_id="host-a", limit=1)
    assert [row["execution_id"] for row in taken] == [shut_down]
    assert queue_store.requeue(execution_ids=[shut_down], instance_id="host-a", started=True) == 1
    _claim(schedule, at=base - timedelta(seconds=900))
    queue_store.queue_manual_run(schedule_id=schedule.schedule_id, domain=schedule.domain,
                              domain_config_id=schedule.domain_config_id, requested_by="ops")
    # Not queued, and older than any queued row: they must not count.
    _claim(schedule, at=base - timedelta(seconds=5000), status=ExecutionStatus.RUNNING)
    done = _claim(schedule, at=base - timedelta(seconds=7200), status=ExecutionStatus.RUNNING)
    assert services.finish_execution(execution_id=done, status=ExecutionStatus.SUCCESS,
                                     started_at=base - timedelta(seconds=7200), instance_id="host-a")
    SchedulerInstance.objects.create(instance_id="host-a", host="h", pid=1, started_at=Now(), last_seen=Now())
    return base


def _healthz() -> dict:
    body = Client().get("/healthz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    return body["queue"]


def _metrics() -> tuple[float, float]:
    body = Client().get("/metrics").content.decode()
    depth = float(re.search(r"^scanner_queue_depth (\S+)$", body, re.M).group(1))
    return depth, float(re.search(r"^scanner_queue_oldest_seconds (\S+)$", body, re.M).group(1))


def _alert_age() -> float:
    """What the alert loop measured: the queue alert fires with the age it read."""
    evaluate(lookback=timedelta(minutes=5))
    return Alert.objects.get(kind=AlertKind.QUEUE_BEHIND, event="firing").details["age_seconds"]


# 0: the clocks agree; ±3 h: this process's clock is off, the database's is the one that counts.
@pytest.mark.parametrize("python_clock_offset", [0, 3 * 3600, -3 * 3600])
def test_healthz_metrics_dashboard_and_the_alert_report_one_age(queue, admin_client, python_clock_offset):
    with time_machine.travel(timedelta(seconds=python_clock_offset), tick=True):
        healthz = _healthz()
        metrics_depth, metrics_age = _metrics()
        dashboard = admin_client.get(reverse("admin-dashboard")).context["queue"]
        alert_age = _alert_age()
    elapsed = (_db_now() - queue).total_seconds()
    assert healthz["depth"] == metrics_depth == dashboard["depth"] == 4, "queued rows only, put-back ones included"
    ages = {"healthz": healthz["oldest_seconds"], "metrics": metrics_age, "dashboard": dashboard["oldest_seconds"],
            "alert": alert_age}
    # Every reader sees the re-queued row's first queueing, plus the seconds the reads took (0.1 s rounding).
    assert all(OLDEST - 0.1 <= age <= OLDEST + elapsed + 0.1 for age in ages.values()), ages
    assert max(ages.values()) - min(ages.values()) <= elapsed + 0.2, ages
    assert healthz["status"] == "degraded", "1200 s is past QUEUE_WARN_SECONDS (300)"


def test_an_empty_queue_has_no_age_anywhere(make_schedule, admin_client, settings):
    settings.HEALTHZ_TOKEN = TOKEN
    schedule = make_schedule()
    _claim(schedule, at=_db_now() - timedelta(seconds=5000), status=ExecutionStatus.RUNNING)
    assert _healthz()["oldest_seconds"] is None
    assert _metrics() == (0.0, 0.0)
    assert admin_client.get(reverse("admin-dashboard")).context["queue"] == {"depth": 0, "oldest_seconds": None}
    evaluate(lookback=timedelta(minutes=5))
    assert not Alert.objects.filter(kind=AlertKind.QUEUE_BEHIND).exists()
