"""/healthz against real, really hung services (no mocks)."""

import os
import signal
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from scanner_project import health
from scanner_project.connections import DatabaseConnection, get_db_connection, get_redis_client
from schedules.models import SchedulerInstance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_instance():
    now = timezone.now()
    return SchedulerInstance.objects.create(instance_id="host-1", host="host", pid=1, started_at=now, last_seen=now)


@pytest.fixture
def hung_redis():
    """SIGSTOP the test's redis-server: connections are accepted by the kernel, nothing answers."""
    pid = int(Path(os.environ["TEST_SERVICES_DIR"], "redis", "pid").read_text().strip())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
        # Let the abandoned check threads finish so later tests start clean.
        for thread in list(health._in_flight.values()):
            thread.join(5)


def _postgres_at(port: int, alias: str):
    """A connection factory for a server outside settings.DATABASES."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    settings_dict = dict(connections.settings["default"])
    options = {k: v for k, v in settings_dict.get("OPTIONS", {}).items() if k != "pool"}
    settings_dict.update(HOST="127.0.0.1", PORT=str(port), OPTIONS={**options, "connect_timeout": 3})
    return lambda: DatabaseWrapper(settings_dict, alias=alias)


@pytest.fixture
def hung_postgres():
    """A TCP socket that accepts connections and never answers, like a hung server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield DatabaseConnection("hung", factory=_postgres_at(server.getsockname()[1], "hung"))
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


HEALTHZ_TOKEN = "healthz-token-for-tests"


@pytest.fixture(autouse=True)
def _healthz_token(settings):
    settings.HEALTHZ_TOKEN = HEALTHZ_TOKEN


def _get(path="/healthz", *, token: str | None = HEALTHZ_TOKEN):
    started = time.monotonic()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    response = Client().get(path, **headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_without_the_token_healthz_gives_the_status_only(live_instance, token):
    response, _ = _get(token=token)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_staff_session_that_may_view_instances_sees_the_details(live_instance, client, staff):
    staff("view_schedulerinstance")
    assert client.get("/healthz").json()["scheduler"]["instances"][0]["instance_id"] == "host-1"


@pytest.mark.parametrize("codenames", [(), ("view_schedule", "view_jobexecution")])
def test_a_staff_session_without_the_instances_view_permission_gets_the_status_only(live_instance, client, staff,
                                                                                    codenames):
    staff(*codenames)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_an_anonymous_failure_shows_no_detail(settings):
    response, _ = _get(token=None)
    assert response.status_code == 503 and response.json() == {"status": "error"}


def test_healthy(live_instance):
    response, _ = _get()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok"} and body["redis"] == {"status": "ok"}
    assert body["scheduler"]["status"] == "ok" and body["scheduler"]["live_instances"] == 1
    assert body["scheduler"]["instances"][0]["instance_id"] == "host-1"
    assert response["Cache-Control"].startswith("max-age=0")


def test_no_live_scheduler_is_unhealthy(settings):
    now = timezone.now()
    SchedulerInstance.objects.create(instance_id="old", host="h", pid=1, started_at=now,
                                     last_seen=now - timedelta(seconds=settings.INSTANCE_STALE_SECONDS + 5))
    SchedulerInstance.objects.create(instance_id="stopped", host="h", pid=2, started_at=now, last_seen=now,
                                     stopped_at=now)
    response, _ = _get()
    assert response.status_code == 503
    assert response.json()["scheduler"] == {"status": "down", "live_instances": 0, "instances": []}


def test_redis_not_configured_is_disabled_not_a_failure(settings, live_instance):
    settings.REDIS_URL = ""
    response, _ = _get()
    assert response.status_code == 200
    assert response.json()["redis"] == {"status": "disabled"}


def test_hung_redis_answers_503_within_a_second(live_instance, hung_redis):
    response, elapsed = _get()
    assert elapsed < 1.0
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["status"] == "timeout"
    assert body["database"] == {"status": "ok"}
    # While the first check still waits on Redis, a second request does not start another.
    response, elapsed = _get()
    assert elapsed < 1.0 and response.json()["redis"]["detail"] == "the previous check has not answered yet"


def test_redis_recovers_after_a_hang(live_instance, hung_redis):
    _get()
    os.kill(hung_redis, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response, _ = _get()
        if response.status_code == 200:
            break
        time.sleep(0.2)
    assert response.status_code == 200 and response.json()["redis"] == {"status": "ok"}


def test_hung_postgres_answers_within_a_second(hung_postgres):
    started = time.monotonic()
    report = health.health_report(db=hung_postgres)
    assert time.monotonic() - started < 1.0
    assert report["status"] == "error"
    assert report["database"]["status"] == "timeout"
    assert report["scheduler"]["status"] == "unknown"
    assert report["redis"] == {"status": "ok"}


def test_design_ping_calls():
    assert get_redis_client().ping() is True
    assert get_db_connection().ping() is True


def test_db_ping_is_false_when_the_server_refuses():
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now: connection refused
    assert DatabaseConnection("refused", factory=_postgres_at(port, "refused")).ping() is False


def test_db_ping_leaves_the_callers_statement_timeout_alone():
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '7s'")
        assert get_db_connection().ping(timeout=0.2) is True
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "7s"
