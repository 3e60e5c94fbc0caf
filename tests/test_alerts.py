"""Alert conditions and delivery in one process, against the real database,
SMTP server and webhook receiver."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db.models.functions import Now

from alerts import checks
from alerts.channels import environment_channels, register_environment_channels
from alerts.delivery import dispatch_all
from alerts.models import Alert, AlertChannel, Delivery
from history.models import JobExecution
from history.statistics import get_queue_backlog
from schedules.models import SchedulerInstance
from tests.smtp_server import SmtpServer
from tests.webhook_server import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(api_server, settings):
    receiver = WebhookReceiver(api_server)
    settings.ALERT_WEBHOOK_URLS = [receiver.url]
    settings.ALERT_EMAILS = []
    settings.ALERT_RETRY_BACKOFF = 0.01
    settings.ALERT_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the receiver is on loopback, allowed on purpose
    register_environment_channels()
    return receiver


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("ALERT_EMAILS", ["ops@example.com", "not-an-address"], "ALERT_EMAILS: 'not-an-address' is not a valid email"),
    ("ALERT_WEBHOOK_URLS", ["ftp://hooks.example.com/x"], "ALERT_WEBHOOK_URLS: 'ftp://hooks.example.com/x' is not"),
])
def test_a_bad_channel_in_the_environment_is_named(settings, name, value, shown):
    settings.ALERT_EMAILS, settings.ALERT_WEBHOOK_URLS = [], []
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=shown):
        environment_channels()
    from alerts.loop import AlertLoop

    with pytest.raises(ImproperlyConfigured, match=shown):
        AlertLoop(instance_id="start")  # runscheduler stops at start, not in its alert thread


def test_api_sync_failing_n_times_alerts_once_and_recovers_once(settings, hook):
    settings.ALERT_SYNC_AFTER_FAILURES = 3
    for _ in range(2):
        checks.note_sync_result({"error": "API answered 503"})
    assert not Alert.objects.exists()
    for _ in range(3):
        checks.note_sync_result({"error": "API answered 503"})
    checks.note_sync_result(None)  # another instance's turn: counts nothing
    checks.note_sync_result({"created": 1})
    checks.note_sync_result({"created": 0})
    assert list(Alert.objects.order_by("id").values_list("kind", "event")) == [
        ("sync_failing", "firing"), ("sync_failing", "resolved")]
    assert "503" in Alert.objects.get(event="firing").text
    assert dispatch_all() == 2
    assert [body["alert"]["event"] for _, _, body in hook.messages] == ["firing", "resolved"]


def test_no_live_instance_alerts_after_the_threshold(hook):
    SchedulerInstance.objects.create(instance_id="a", host="h", pid=1, started_at=Now(), last_seen=Now())
    assert checks.check_scheduler_liveness(threshold_seconds=60) is None  # live: nothing to resolve
    SchedulerInstance.objects.filter(instance_id="a").update(stopped_at=Now())
    assert checks.check_scheduler_liveness(threshold_seconds=60) is None  # not long enough
    SchedulerInstance.objects.filter(instance_id="a").update(last_seen=Now() - timedelta(seconds=61))
    assert checks.check_scheduler_liveness(threshold_seconds=60) is True
    assert checks.check_scheduler_liveness(threshold_seconds=60) is None  # already firing
    SchedulerInstance.objects.create(instance_id="b", host="h", pid=2, started_at=Now(), last_seen=Now())
    assert checks.check_scheduler_liveness(threshold_seconds=60) is False
    assert list(Alert.objects.order_by("id").values_list("event", flat=True)) == ["firing", "resolved"]


def test_queue_age_alert_reads_the_oldest_queued_row(make_schedule, hook):
    schedule = make_schedule()
    assert get_queue_backlog()["oldest_seconds"] is None
    JobExecution.objects.create(schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
                                domain_config_id=schedule.domain_config_id, status="queued", trigger="manual",
                                started_at=Now())
    # A queued row waits since its started_at (see get_queue_backlog), by the database's clock.
    JobExecution.objects.filter(status="queued").update(started_at=Now() - timedelta(seconds=900))
    age = get_queue_backlog()["oldest_seconds"]
    assert 899 < age < 960
    assert checks.check_queue_age(age_seconds=age, threshold_seconds=600) is True
    assert checks.check_queue_age(age_seconds=10.0, threshold_seconds=600) is False
    assert checks.check_queue_age(age_seconds=None, threshold_seconds=600) is None


def test_per_schedule_threshold_wins_over_the_default(make_schedule, settings, hook):
    from alerts.models import ScheduleAlertRule

    settings.ALERT_AFTER_FAILURES = 3
    strict, lenient = make_schedule(), make_schedule()
    ScheduleAlertRule.objects.create(schedule=strict, after_failures=1)
    for schedule in (strict, lenient):
        JobExecution.objects.create(schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
                                    domain_config_id=schedule.domain_config_id, status="failed",
                                    started_at=Now(), completed_at=Now(), error_message="boom")
    assert checks.check_schedule_streaks(finished_within=timedelta(minutes=1)) == 1
    assert Alert.objects.get().subject == str(strict.schedule_id)


def test_email_goes_through_the_smtp_server(settings, make_schedule):
    with SmtpServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        AlertChannel.objects.create(kind="email", target="ops@example.com")
        checks.check_queue_age(age_seconds=700.0, threshold_seconds=600)
        assert dispatch_all() == 1
        assert smtp.messages[0]["To"] == "ops@example.com"
        assert smtp.messages[0]["Subject"] == "Queue behind: a slot has waited 700 s"


def test_checkalerts_command_evaluates_and_delivers(hook, capsys):
    call_command("checkalerts")  # no instance has ever run
    assert Alert.objects.get().kind == "no_live_instance"
    assert "1 alert message(s) sent" in capsys.readouterr().out
    assert Delivery.objects.get().status == "sent"


def test_alert_list_is_read_only_in_admin(client, admin_user, hook):
    checks.check_queue_age(age_seconds=700.0, threshold_seconds=600)
    client.force_login(admin_user)
    page = client.get("/admin/alerts/alert/")
    assert b"Queue behind" in page.content and b"pending (0 tries)" in page.content
    assert client.get("/admin/alerts/alert/add/").status_code == 403


@pytest.mark.django_db(transaction=True)  # the pass gives its connection back, as in its own thread
def test_a_failing_check_does_not_stop_the_others_or_the_loop(monkeypatch, hook, caplog):
    from alerts.loop import AlertLoop

    def broken(**kwargs):
        raise RuntimeError("streak query broke")

    monkeypatch.setattr(checks, "check_schedule_streaks", broken)
    JobExecution.objects.create(job_id="schedule:x", domain="q.example.com", domain_config_id="q", status="queued",
                                trigger="manual", started_at=Now())
    JobExecution.objects.update(started_at=Now() - timedelta(hours=1))  # queued an hour ago
    from schedules.runtime.loops import Loops

    loop = AlertLoop(instance_id="test")
    loops = Loops(stop=threading.Event(), on_death=lambda name: None, on_db_error=lambda exc: None)
    assert loops.one_pass("alerts", loop.run_once)  # as its loop thread runs it: logs, never raises
    assert "Alert check schedule streaks failed" in caplog.text
    assert list(Alert.objects.values_list("kind", flat=True)) == ["queue_behind", "no_live_instance"]
    monkeypatch.setattr("alerts.loop.dispatch_all", lambda: 1 / 0)
    assert not loops.one_pass("alerts", loop.run_once)
    assert "Background loop alerts: a pass failed" in caplog.text


def test_a_delivery_is_retried_with_backoff_then_given_up(hook, settings):
    settings.ALERT_RETRY_BACKOFF = 60.0
    hook.down.set()
    checks.check_queue_age(age_seconds=700.0, threshold_seconds=600)
    assert dispatch_all() == 0
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1) and "503" in delivery.last_error
    assert dispatch_all() == 0 and Delivery.objects.get().attempts == 1  # not due again for a minute
    Delivery.objects.update(next_attempt_at=Now(), created_at=Now() - timedelta(days=2))
    assert dispatch_all() == 0
    assert (Delivery.objects.get().status, Delivery.objects.get().attempts) == ("failed", 2)
    assert hook.refused == 6  # each attempt: the request and urllib3's two quick retries


def test_more_alerts_than_the_rate_limit_fold_into_one_summary(hook, settings, make_schedule):
    settings.ALERT_RATE_LIMIT = 3
    for n in range(10):
        checks.claim(kind="schedule_failing", subject=f"s{n}", firing=True, title=f"Failing: s{n}", text="x")
    assert dispatch_all() == 3
    assert [body.get("summary", {}).get("count") for _, _, body in hook.messages] == [None, None, 8]
    assert "Failing: s2" in hook.messages[2][2]["text"]
    assert Delivery.objects.filter(status="folded").count() == 8
    checks.claim(kind="schedule_failing", subject="s10", firing=True, title="Failing: s10", text="x")
    assert dispatch_all() == 0  # the minute's budget is spent: it waits, it is not dropped
    assert Delivery.objects.filter(status="pending").count() == 1
