"""Security: deploy checks with the documented settings, per-model admin permissions,
secrets never in logs, output or messages, and nothing secret in /healthz or /metrics."""

import logging
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse
from django_redis import get_redis_connection

from history.models import JobExecution
from schedules.importer.apply import SyncError, sync_schedules_from_api
from schedules.models import Schedule, SchedulerInstance
from schedules.scans.http_api import http_runner
from schedules.scans.request import ScanRequest
from schedules.scans.retries import run_with_retries
from tests import cluster
from tests.api_server import EXAMPLE, closed_port_url, send
from tests.stored_rows import snapshot
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = ROOT / "docs" / "production.env.example"


def _production_env() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in PRODUCTION_ENV.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def test_check_deploy_passes_with_the_documented_production_settings():
    # Exactly the file, nothing else of this environment: no SECRET_KEY or URL
    # substituted (the sample key once failed W009 as written).
    documented = _production_env()
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "BEHIND_TLS_PROXY", "SECURE_HSTS_PRELOAD",
            "DATABASE_URL", "REDIS_URL"} <= set(documented)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")} | documented
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- admin permissions are per model ---------------------------------------------------------


def _schedule_form(schedule):
    return {"domain_config_id": schedule.domain_config_id, "domain": schedule.domain, "profile": "", "enabled": "on",
            "frequency": "daily", "time_config": '{"hour": 9, "minute": 0}', "timezone": "UTC", "scan_settings": "{}"}


def _requests(stored):
    a = stored["a"]
    changelist = reverse("admin:schedules_schedule_changelist")
    return {
        "list": ("get", changelist, {}),
        "view": ("get", reverse("admin:schedules_schedule_change", args=[a.pk]), {}),
        "add": ("post", reverse("admin:schedules_schedule_add"), _schedule_form(Schedule(domain_config_id="n", domain="n.com"))),
        "change": ("post", reverse("admin:schedules_schedule_change", args=[a.pk]), _schedule_form(a)),
        "delete": ("post", reverse("admin:schedules_schedule_delete", args=[a.pk]), {"post": "yes"}),
        "enable": ("post", changelist, {"action": "enable_schedules", "_selected_action": [stored["b"].pk]}),
        "disable": ("post", changelist, {"action": "disable_schedules", "_selected_action": [a.pk]}),
        "run_now": ("post", changelist, {"action": "run_now", "_selected_action": [a.pk]}),
        "sync": ("post", reverse("admin:schedules_schedule_sync"), {}),
    }


@pytest.mark.parametrize("perms, forbidden", [
    (("view_jobexecution",), ["list", "view", "add", "change", "delete", "enable", "disable", "run_now", "sync"]),
    (("view_schedule",), ["add", "change", "delete", "sync"]),
    (("view_schedule", "view_jobexecution", "view_scanprofile"), ["add", "change", "delete", "sync"]),
])
def test_staff_can_do_only_what_their_model_permissions_allow(client, staff, stored, api_server, sync_settings, perms,
                                                             forbidden):
    sync_settings.API_URL = api_server.serve_json("/s", EXAMPLE)
    staff(*perms)
    for name, (method, url, data) in _requests(stored).items():
        response = getattr(client, method)(url, data)
        if name in forbidden:
            assert response.status_code == 403, (name, response.status_code)
        else:
            # Actions without change permission are not offered: nothing runs.
            assert response.status_code in (200, 302), (name, response.status_code)
    assert snapshot() == stored["snapshot"]
    assert api_server.hits["/s"] == 0


def test_executions_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client, stored):
    execution = JobExecution.objects.get()
    assert admin_client.get(reverse("admin:history_jobexecution_add")).status_code == 403
    assert admin_client.post(reverse("admin:history_jobexecution_add"), {"domain": "x.com"}).status_code == 403
    change = reverse("admin:history_jobexecution_change", args=[execution.pk])
    assert admin_client.post(change, {"status": "failed", "error_message": "forged"}).status_code == 403
    delete = reverse("admin:history_jobexecution_delete", args=[execution.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = admin_client.post(reverse("admin:history_jobexecution_changelist"),
                             {"action": "delete_selected", "_selected_action": [execution.pk], "post": "yes"})
    assert bulk.status_code in (200, 302)
    assert snapshot() == stored["snapshot"]


# --- secrets never in logs, output or messages -------------------------------------------------
SYNC_TOKEN = "sync-tok-" + uuid.uuid4().hex
SCAN_TOKEN = "scan-tok-" + uuid.uuid4().hex


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)  # root at DEBUG: urllib3, requests, the service
    for name in ("urllib3", "schedules", "scanner_project", "history"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield caplog
    for name in ("urllib3", "schedules", "scanner_project", "history"):
        logging.getLogger(name).setLevel(logging.NOTSET)


SYNC_ANSWERS = [
    pytest.param(lambda s: s.serve_json("/ok", EXAMPLE), id="success"),
    pytest.param(lambda s: s.url("/missing"), id="http-404"),
    pytest.param(lambda s: s.serve_json("/err", {}, status=503), id="http-503-retried"),
    pytest.param(lambda s: s.serve("/html", lambda h, _: send(h, 200, b"<html>")), id="not-json"),
    pytest.param(lambda s: closed_port_url(), id="unreachable"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("make_url", SYNC_ANSWERS)
def test_api_token_appears_in_no_log_output_or_error(api_server, sync_settings, all_logs, make_url):
    sync_settings.API_TOKEN = SYNC_TOKEN
    sync_settings.API_URL = make_url(api_server)
    out, errors = StringIO(), []
    try:
        call_command("syncschedules", stdout=out, stderr=out)
    except CommandError as exc:
        errors.append(str(exc))
    try:
        sync_schedules_from_api()
    except SyncError as exc:
        errors.append(str(exc))
    assert any(r.name.startswith("urllib3") for r in all_logs.records), "urllib3 DEBUG must be captured"
    assert SYNC_TOKEN not in all_logs.text + out.getvalue() + " ".join(errors)
    if api_server.authorization:
        assert set(api_server.authorization) == {f"Bearer {SYNC_TOKEN}"}  # it did travel, in the header


@pytest.mark.django_db
def test_a_token_in_the_url_query_is_redacted_in_our_messages_and_in_urllib3s_log_lines(api_server, sync_settings, all_logs):
    """Tokens belong in API_TOKEN, not the URL; one in the URL is still redacted everywhere,
    urllib3's DEBUG lines included (the redacting filter on the root handlers)."""
    secret = "query-secret-" + uuid.uuid4().hex
    with pytest.raises(SyncError) as raised:
        sync_schedules_from_api(url=api_server.url(f"/missing?api_key={secret}"))
    assert secret not in str(raised.value) and "api_key=***" in str(raised.value)
    ours = [r.getMessage() for r in all_logs.records if not r.name.startswith("urllib3")]
    assert not any(secret in line for line in ours)
    urllib3 = [r.getMessage() for r in all_logs.records if r.name.startswith("urllib3")]
    assert any("api_key=***" in line for line in urllib3) and not any(secret in line for line in urllib3)
    assert "never put a token in the\n# query string" in PRODUCTION_ENV.read_text()


def _scan_request():
    return ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain="example.com",
                       domain_config_id="cfg", scheduled_for=datetime(2026, 5, 1, tzinfo=timezone.utc), scan_settings={})


@pytest.mark.parametrize("status, body", [(201, b'{"scan_id": "s-1"}'), (500, b'{"detail": "boom"}'), (200, b"not json")])
def test_scan_api_token_appears_in_no_log_or_error(api_server, settings, all_logs, status, body):
    settings.SCAN_API_TOKEN = SCAN_TOKEN
    settings.SCAN_API_URL = api_server.serve("/scans", lambda h, s: send(h, status, body))
    settings.REQUEST_TIMEOUT = 1
    outcome = run_with_retries(runner=http_runner, request=_scan_request(), max_retries=1, backoff=0.01,
                               stop=__import__("threading").Event())
    shown = all_logs.text + repr(outcome.attempts) + repr(outcome.error_details) + repr(outcome.result)
    assert any(r.name.startswith("urllib3") for r in all_logs.records)
    assert SCAN_TOKEN not in shown
    assert set(api_server.authorization) == {f"Bearer {SCAN_TOKEN}"}


@pytest.fixture
def redis_user_with_password():
    password = "redis-pw-" + uuid.uuid4().hex
    redis = get_redis_connection("default")
    redis.execute_command("ACL", "SETUSER", "scheduler-test", "on", f">{password}", "~*", "&*", "+@all")
    yield "scheduler-test", password
    redis.execute_command("ACL", "DELUSER", "scheduler-test")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_runscheduler_start_up_log_shows_no_database_or_redis_password(tmp_path, redis_user_with_password):
    user, redis_password = redis_user_with_password
    db_password = "db-pw-" + uuid.uuid4().hex  # the test server trusts loopback: accepted, unused
    db_url = cluster.test_database_url().replace("postgres://postgres@", f"postgres://postgres:{db_password}@")
    port = os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": f"redis://{user}:{redis_password}@127.0.0.1:{port}/0",
           "LOG_LEVEL": "debug", "API_TOKEN": SYNC_TOKEN, "SCAN_API_TOKEN": SCAN_TOKEN, "PYTHONUNBUFFERED": "1",
           "SCAN_RUNNER": "noop", "SHUTDOWN_GRACE_SECONDS": "1"}
    log_path = tmp_path / "runscheduler.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--instance-id", "secrets"], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # A few heartbeats and polls, with Redis and PostgreSQL in use.
        wait_until(lambda: "Loaded" in log_path.read_text() or process.poll() is not None, timeout=30)
        wait_until(lambda: SchedulerInstance.objects.filter(instance_id="secrets", status__feed__subscribed=True)
                   .exists() or process.poll() is not None, timeout=15, message=log_path.read_text)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    text = log_path.read_text()
    assert "Loaded" in text and "locks in redis" in text, text
    for secret in (db_password, redis_password, SYNC_TOKEN, SCAN_TOKEN):
        assert secret not in text


# --- /healthz and /metrics --------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_health_and_metrics_reveal_no_secrets(client, settings, path):
    settings.API_TOKEN, settings.SCAN_API_TOKEN = SYNC_TOKEN, SCAN_TOKEN
    body = client.get(path).content.decode()
    for secret in (settings.SECRET_KEY, SYNC_TOKEN, SCAN_TOKEN, os.environ["DATABASE_URL"], os.environ["REDIS_URL"]):
        assert secret not in body
    assert "redis://" not in body and "postgres://" not in body and "password" not in body.lower()


@pytest.mark.django_db
def test_healthz_error_detail_for_an_unreachable_redis_shows_no_password(client, settings):
    settings.HEALTHZ_TOKEN = "monitor-token"  # the details are shown to monitors only
    password = "redis-pw-" + uuid.uuid4().hex
    url = closed_port_url().replace("http://", f"redis://user:{password}@").replace("/schedules", "/0")
    caches = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url,
                          "OPTIONS": {"CONNECTION_POOL_KWARGS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}}
    with override_settings(CACHES=caches, REDIS_URL=url):
        response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitor-token")
    body = response.content.decode()
    assert response.status_code == 503 and '"redis": {"status": "error"' in body, body
    assert password not in body and "redis://" not in body
