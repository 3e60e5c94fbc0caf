"""Alerts with three real `runscheduler` processes, a real SMTP server
(aiosmtpd) and a real webhook receiver: one alert per transition whatever
the number of instances, retries until a webhook is back, and a storm
folded into a bounded number of messages."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertChannel, Delivery
from history.models import JobExecution
from schedules.models import Schedule
from tests.cluster import Cluster
from tests.smtp_server import SmtpServer
from tests.waiting import wait_until
from tests.webhook_server import WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hook(api_server):
    return WebhookReceiver(api_server)


@pytest.fixture
def cluster(tmp_path, smtp, hook):
    c = Cluster(tmp=tmp_path, env={
        "SCAN_RUNNER": "tests.runners.flaky_runner",
        "LOCK_TIMEOUT": "3", "JOB_MISFIRE_GRACE_TIME": "30", "SHUTDOWN_GRACE_SECONDS": "5", "MAX_WORKERS": "10",
        "ALERT_CHECK_INTERVAL": "0.3", "ALERT_RETRY_BACKOFF": "0.3",
        "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
        "ALERT_EMAILS": "ops@example.com", "ALERT_WEBHOOK_URLS": hook.url, "ALERT_ALLOWED_NETWORKS": "127.0.0.0/8",
    })
    yield c
    c.stop_all()


def start_three(cluster, **env):
    instances = [cluster.start(f"alerts-{n}", **env) for n in range(3)]
    for instance in instances:
        cluster.wait_until_loaded(instance, timeout=60)
    # ALERT_EMAILS and ALERT_WEBHOOK_URLS become channels on the first alert pass.
    wait_until(lambda: AlertChannel.objects.count() == 2, timeout=30, message="channels not registered")
    return instances


def fail_rows(schedules, count: int) -> None:
    """``count`` failed runs of each schedule, finished now (as a runner would write them)."""
    now = timezone.now()
    JobExecution.objects.bulk_create([
        JobExecution(schedule=s, job_id=s.job_id, domain=s.domain, domain_config_id=s.domain_config_id,
                     status="failed", trigger="manual", started_at=now - timedelta(seconds=count - n),
                     completed_at=now, error_message="ConnectionError: down")
        for s in schedules for n in range(count)
    ])


def test_failing_streak_sends_one_alert_and_recovery_one(cluster, smtp, hook):
    schedule = Schedule(domain_config_id="flaky-1", domain="flaky.example.com", frequency="interval",
                        time_config={"seconds": 1}, scan_settings={"fail": True})
    schedule.full_clean()
    schedule.save()
    start_three(cluster)

    def runs(status):
        return JobExecution.objects.filter(schedule=schedule, status=status).count()

    firing = wait_until(lambda: Alert.objects.filter(event="firing").first(), timeout=60,
                        message=lambda: f"no firing alert; {runs('failed')} failed runs")
    assert firing.subject == str(schedule.schedule_id)
    wait_until(lambda: len(smtp.messages) >= 1 and len(hook.messages) >= 1, timeout=30, message="firing not delivered")
    # The streak goes on: still one alert.
    failed_then = runs("failed")
    wait_until(lambda: runs("failed") >= failed_then + 4, timeout=60, message="no further failed runs")

    schedule.scan_settings = {}
    schedule.save()
    wait_until(lambda: Alert.objects.filter(event="resolved").exists(), timeout=60, message="no recovery alert")
    wait_until(lambda: len(smtp.messages) >= 2 and len(hook.messages) >= 2, timeout=30, message="recovery not delivered")
    ok_then = runs("success")
    wait_until(lambda: runs("success") >= ok_then + 4, timeout=60, message="no further successful runs")
    wait_until(lambda: not Delivery.objects.filter(status="pending").exists(), timeout=30, message="deliveries pending")

    assert list(Alert.objects.order_by("id").values_list("event", flat=True)) == ["firing", "resolved"]
    assert [m["Subject"] for m in smtp.messages] == [
        "Failing: flaky.example.com failed 3 times in a row", "Recovered: flaky.example.com scans succeed again"]
    assert [body["alert"]["event"] for _, _, body in hook.messages] == ["firing", "resolved"]
    assert hook.messages[0][2]["text"].startswith("*Failing: flaky.example.com")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_webhook_down_gets_retries_and_loses_nothing(cluster, hook):
    hook.down.set()
    start_three(cluster)
    schedules = [Schedule.objects.create(domain_config_id=f"down-{n}", domain=f"down{n}.example.com",
                                         frequency="daily", time_config={"hour": 2, "minute": 0}) for n in range(5)]
    fail_rows(schedules, 3)
    webhook = AlertChannel.objects.get(kind="webhook")
    wait_until(lambda: Alert.objects.count() == 5, timeout=60, message="alerts not claimed")
    wait_until(lambda: Delivery.objects.filter(channel=webhook, attempts__gte=3).count() >= 1, timeout=60,
               message="no retries while the webhook is down")
    assert hook.messages == [] and hook.refused >= 3
    hook.down.clear()
    wait_until(lambda: not Delivery.objects.filter(channel=webhook, status="pending").exists(), timeout=90,
               message=lambda: f"still pending: {list(Delivery.objects.filter(status='pending').values('attempts'))}")

    keys = Counter(key for _, key, _ in hook.messages)
    assert all(n == 1 for n in keys.values()), f"sent twice: {keys}"
    delivered = {body["alert"]["subject"] for _, _, body in hook.messages}
    assert delivered == {str(s.schedule_id) for s in schedules}
    assert set(Delivery.objects.filter(channel=webhook).values_list("status", flat=True)) == {"sent"}


def test_storm_of_500_failing_schedules_is_bounded_and_summarised(cluster, smtp, hook):
    limit, window = 5, 8.0
    start_three(cluster, ALERT_AFTER_FAILURES="1", ALERT_RATE_LIMIT=str(limit),
                ALERT_RATE_WINDOW_SECONDS=str(window))
    schedules = Schedule.objects.bulk_create([
        Schedule(domain_config_id=f"storm-{n:03}", domain=f"storm{n}.example.com", frequency="daily",
                 time_config={"hour": 2, "minute": 0}) for n in range(500)])
    fail_rows(schedules, 1)
    wait_until(lambda: Alert.objects.count() >= 500, timeout=120,
               message=lambda: f"{Alert.objects.count()} of 500 alerts")
    wait_until(lambda: not Delivery.objects.filter(status="pending").exists(), timeout=120,
               message="deliveries still pending")

    assert Alert.objects.count() == 500
    assert Alert.objects.values("subject").distinct().count() == 500
    for channel, received in ((AlertChannel.objects.get(kind="webhook"), len(hook.messages)),
                              (AlertChannel.objects.get(kind="email"), len(smtp.messages))):
        rows = Delivery.objects.filter(channel=channel)
        individual = rows.filter(alert__isnull=False, status="sent").count()
        summaries = rows.filter(alert__isnull=True, status="sent")
        folded = sum(int(s.summary_text.split()[0]) for s in summaries)
        assert individual + folded == 500, (channel, individual, folded)
        assert rows.filter(status="folded").count() == folded
        assert received == individual + summaries.count() <= 50, (channel, received)
    # Never more than the limit within one window (arrival times at the receiver).
    times = sorted(t for t, _, _ in hook.messages)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + window * 0.9) <= limit
    assert any("summary" in body for _, _, body in hook.messages)
