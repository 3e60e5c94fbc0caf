"""No network call inside a database transaction: a delivery is claimed in a
short transaction, sent with none open, and recorded in another.

A real `manage.py checkalerts` (what cron runs) delivers to a webhook that
holds its answer until the test releases it (20 s at most); while it holds,
writes from the test commit at once, on PostgreSQL and on SQLite, and no
other sender takes the claimed delivery. Then the claim protocol itself: a
live claim is respected, a lapsed one taken over, a stale sender fenced off."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.db.models.functions import Now

from alerts import checks
from alerts.delivery import _attempt, claim_due, dispatch_all
from alerts.models import AlertChannel, Delivery
from schedules.models import SchedulerInstance
from tests import cluster
from tests.test_alerts import hook  # noqa: F401 - a fixture: the webhook channel on loopback
from tests.waiting import wait_until
from tests.webhook_server import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
WRITE_WITHIN = 1.0  # seconds: a write during the delivery commits by then
LOCK_WAIT = 2.0  # how long a write may wait for a lock before it counts as blocked


@pytest.fixture
def sender(tmp_path):
    """Start `manage.py checkalerts` against ``database_url``, delivering to ``hook_url``."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(database_url: str, hook_url: str, *, command: str = "checkalerts") -> tuple[subprocess.Popen, Path]:
        env = {**os.environ, "DATABASE_URL": database_url, "ALERT_WEBHOOK_URLS": hook_url, "ALERT_EMAILS": "",
               "ALERT_ALLOWED_NETWORKS": "127.0.0.0/8", "ALERT_WEBHOOK_TIMEOUT": "30", "PYTHONUNBUFFERED": "1"}
        if database_url.startswith("sqlite"):
            env.pop("REDIS_URL", None)  # the embedded default: SQLite, no Redis
        log = tmp_path / f"{command}-{len(started)}.log"
        process = subprocess.Popen([sys.executable, "manage.py", command, *(["-v0"] if command == "migrate" else [])],
                                   cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        started.append((process, log))
        return process, log

    yield start
    for process, _ in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def held(hook_receiver: WebhookReceiver, process: subprocess.Popen, log: Path) -> None:
    wait_until(lambda: hook_receiver.arrived >= 1 or process.poll() is not None, timeout=60,
               message=lambda: f"no delivery arrived:\n{log.read_text()}")
    assert process.poll() is None, log.read_text()


def finish(hook_receiver: WebhookReceiver, process: subprocess.Popen, log: Path) -> str:
    hook_receiver.release.set()
    assert process.wait(timeout=60) == 0, log.read_text()
    return log.read_text()


def postgres_commit_seconds(write) -> float:
    start = time.monotonic()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT * 1000)}ms'")
            write()
    except OperationalError:  # the lock was not granted within LOCK_WAIT
        return float("inf")
    return time.monotonic() - start


def other_open_transactions() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, state, left(query, 120) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
        return cursor.fetchall()


@pytest.mark.slow
def test_a_slow_webhook_holds_no_transaction_or_lock_on_postgresql(api_server, sender):
    receiver = WebhookReceiver(api_server)
    receiver.hold.set()
    process, log = sender(cluster.test_database_url(), receiver.url)
    held(receiver, process, log)
    channel = AlertChannel.objects.get()
    seconds = {
        "another table": postgres_commit_seconds(lambda: SchedulerInstance.objects.create(
            instance_id="writer", host="h", pid=1, started_at=Now(), last_seen=Now())),
        "the channel's row (an admin edit)": postgres_commit_seconds(
            lambda: AlertChannel.objects.filter(pk=channel.pk).update(enabled=True)),
    }
    assert all(s < WRITE_WITHIN for s in seconds.values()), seconds
    assert other_open_transactions() == []

    # Another instance finds nothing to send: the one delivery is claimed, and its claim is live.
    delivery = Delivery.objects.get()
    assert delivery.claimed_by and delivery.status == "pending"
    assert dispatch_all() == 0 and receiver.arrived == 1
    # A new alert inserts a delivery that references the channel's row.
    seconds = postgres_commit_seconds(lambda: checks.claim(
        kind="queue_behind", subject="during", firing=True, title="During", text="x"))
    assert seconds < WRITE_WITHIN
    assert process.poll() is None and receiver.arrived == 1, "the delivery ended before the writes"

    assert "1 alert message(s) sent" in finish(receiver, process, log)
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"
    assert Counter(headers["webhook-id"] for headers, _ in receiver.received) == {f"alert-delivery-{delivery.pk}": 1}


def sqlite_commit_seconds(path: Path, *statements: tuple) -> float:
    db = sqlite3.connect(path, timeout=LOCK_WAIT, isolation_level=None)
    start = time.monotonic()
    try:
        db.execute("BEGIN IMMEDIATE")
        for sql, params in statements:
            db.execute(sql, params)
        db.execute("COMMIT")
    except sqlite3.OperationalError:  # "database is locked" after LOCK_WAIT
        return float("inf")
    finally:
        db.close()
    return time.monotonic() - start


@pytest.mark.slow
def test_a_slow_webhook_holds_no_write_lock_on_sqlite(tmp_path, api_server, sender):
    path = tmp_path / "alerts.sqlite3"
    database_url = f"sqlite:///{path}"
    migrate, log = sender(database_url, "", command="migrate")
    assert migrate.wait(timeout=300) == 0, log.read_text()
    receiver = WebhookReceiver(api_server)
    receiver.hold.set()
    process, log = sender(database_url, receiver.url)
    held(receiver, process, log)

    seconds = {
        "another table": sqlite_commit_seconds(path, (
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
            ("k" * 32, "", "2100-01-01 00:00:00"))),
        "the channel's row": sqlite_commit_seconds(path, ("UPDATE alert_channels SET enabled = 1", ())),
    }
    assert all(s < WRITE_WITHIN for s in seconds.values()), seconds
    assert process.poll() is None and receiver.arrived == 1, "the delivery ended before the writes"
    assert "1 alert message(s) sent" in finish(receiver, process, log)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT status, claimed_by FROM alert_deliveries").fetchall() == [("sent", "")]


def fire(n: int = 0):
    return checks.claim(kind="queue_behind", subject=f"q{n}", firing=True, title=f"Queue behind {n}", text="x")


def test_a_live_claim_is_respected_and_a_lapsed_one_is_taken_over(hook):  # noqa: F811
    fire()
    Delivery.objects.update(claimed_by="crashed-sender", claimed_until=Now() + timedelta(minutes=5))
    assert dispatch_all() == 0 and hook.arrived == 0
    Delivery.objects.update(claimed_until=Now() - timedelta(seconds=1))  # its sender died: the claim lapsed
    assert dispatch_all() == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.claimed_by, delivery.claimed_until, delivery.attempts) == ("sent", "", None, 1)
    assert hook.received[0][0]["webhook-id"] == f"alert-delivery-{delivery.pk}"


def test_a_sender_whose_claim_was_taken_over_sends_nothing(hook):  # noqa: F811
    fire()
    channel, batch = claim_due(channel_id=AlertChannel.objects.get().pk, token="slow-sender")
    assert [d.claimed_by for d in Delivery.objects.all()] == ["slow-sender"] and len(batch) == 1
    Delivery.objects.update(claimed_by="next-sender")  # it lapsed while the slow sender stalled, and was taken
    assert _attempt(channel=channel, delivery=batch[0], token="slow-sender") is None
    assert hook.arrived == 0 and Delivery.objects.get().claimed_by == "next-sender"


def test_deliveries_claimed_elsewhere_count_against_the_rate_limit(hook, settings):  # noqa: F811
    settings.ALERT_RATE_LIMIT = 3
    for n in range(4):
        fire(n)
    first_two = list(Delivery.objects.order_by("id").values_list("id", flat=True)[:2])
    Delivery.objects.filter(pk__in=first_two).update(claimed_by="other", claimed_until=Now() + timedelta(minutes=5))
    assert dispatch_all() == 1  # 3 per window, 2 of them in flight elsewhere
    assert Delivery.objects.filter(status="sent").count() == 1


def test_concurrent_senders_send_each_delivery_once(hook):  # noqa: F811
    for n in range(8):
        fire(n)
    start = threading.Barrier(4)
    results: list[int] = []

    def sender_thread():
        try:
            start.wait(timeout=10)
            results.append(dispatch_all())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 8
    assert sorted(Counter(key for _, key, _ in hook.messages).values()) == [1] * 8
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
