"""Scan runners against a real HTTP server on 127.0.0.1."""

import json
import logging
import threading
import uuid
from datetime import datetime, timezone

import pytest

from scanner_project.logformat import JsonFormatter
from schedules.scans import get_runner
from schedules.scans.browser import BrowserScanner
from schedules.scans.http_api import ScanApiClient, http_runner
from schedules.scans.probe import ProbeScanner, probe_runner
from schedules.scans.request import ScanRefused, ScanRequest, noop_runner
from schedules.scans.retries import run_with_retries
from tests.api_server import send


def request_for(domain: str, **settings) -> ScanRequest:
    return ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain=domain, domain_config_id="cfg",
                       scheduled_for=datetime(2026, 5, 1, tzinfo=timezone.utc), scan_settings=settings)


def with_cookies(*cookies: str, status: int = 200, location: str | None = None):
    def behave(handler, server):
        handler.send_response(status)
        for cookie in cookies:
            handler.send_header("Set-Cookie", cookie)
        if location:
            handler.send_header("Location", location)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    return behave


@pytest.fixture
def probe_settings(settings):
    settings.PROBE_SCHEME = "http"
    settings.PROBE_ALLOW_PRIVATE = True
    settings.REQUEST_TIMEOUT = 1
    settings.SCAN_DEADLINE = 3
    settings.SCAN_API_TOKEN = "scan-token-never-logged"
    return settings


def host_of(server) -> str:
    return f"127.0.0.1:{server.httpd.server_address[1]}"


def test_probe_records_the_cookies_of_the_home_page_and_custom_pages(api_server, probe_settings):
    api_server.serve("/", with_cookies("session=abc; Path=/; HttpOnly; SameSite=Lax", "consent=0; Path=/"))
    api_server.serve("/privacy", with_cookies("tracker=1; Path=/; Secure; SameSite=None"))
    result = probe_runner(request_for(host_of(api_server), customPages=["/privacy"]))
    cookies = {c["name"]: c for c in result.metadata["scan"]["cookies"]}
    assert set(cookies) == {"session", "consent", "tracker"}
    assert cookies["session"]["http_only"] is True and cookies["session"]["same_site"] == "Lax"
    assert cookies["tracker"]["secure"] is True and cookies["consent"]["http_only"] is False
    assert [p["status"] for p in result.metadata["scan"]["pages"]] == [200, 200]


def test_probe_follows_redirects_and_keeps_their_cookies(api_server, probe_settings):
    api_server.serve("/", with_cookies("first=1; Path=/", status=302, location="/home"))
    api_server.serve("/home", with_cookies("second=2; Path=/"))
    result = probe_runner(request_for(host_of(api_server)))
    assert {c["name"] for c in result.metadata["scan"]["cookies"]} == {"first", "second"}
    assert result.metadata["scan"]["pages"][0]["final_url"].endswith("/home")


@pytest.mark.parametrize("domain", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "192.168.0.10"])
def test_probe_refuses_private_addresses_unless_allowed(domain, settings):
    settings.PROBE_ALLOW_PRIVATE = False
    with pytest.raises(ScanRefused, match="PROBE_ALLOW_PRIVATE"):
        probe_runner(request_for(domain))


def test_a_refused_scan_is_not_retried(settings):
    settings.PROBE_ALLOW_PRIVATE = False
    outcome = run_with_retries(runner=probe_runner, request=request_for("127.0.0.1"), max_retries=3, backoff=0,
                               stop=threading.Event())
    assert outcome.result is None and len(outcome.attempts) == 1
    assert outcome.error_details["type"] == "schedules.scans.request.ScanRefused"


def test_http_runner_posts_the_domain_and_settings_and_reads_the_scan_id(api_server, probe_settings):
    url = api_server.serve("/scans", lambda h, s: send(h, 201, b'{"scan_id": "scan-777"}'))
    probe_settings.SCAN_API_URL = url
    result = http_runner(request_for("example.com", maxPages=5))
    assert result.scan_id == "scan-777"
    body = json.loads(api_server.bodies[-1])
    assert body["domain"] == "example.com" and body["settings"] == {"maxPages": 5}
    assert api_server.authorization[-1] == "Bearer scan-token-never-logged"


def test_http_runner_raises_on_an_error_answer(api_server, probe_settings):
    probe_settings.SCAN_API_URL = api_server.serve("/scans", lambda h, s: send(h, 500, b"{}"))
    with pytest.raises(Exception, match="500"):
        http_runner(request_for("example.com"))


def test_runner_selection(settings):
    settings.SCAN_RUNNER, settings.SCAN_API_URL = "", ""
    assert isinstance(get_runner(), BrowserScanner)  # the default: a real browser scan
    settings.SCAN_API_URL = "http://scan.internal/scans"
    assert isinstance(get_runner(), ScanApiClient)
    settings.SCAN_RUNNER = "probe"
    assert isinstance(get_runner(), ProbeScanner)
    settings.SCAN_RUNNER = "schedules.scans.request.noop_runner"
    assert get_runner() is noop_runner
    settings.SCAN_RUNNER = "schedules.runners.noop_runner"  # the path before schedules.scans still works
    assert get_runner() is noop_runner


def test_json_log_lines_carry_the_job_context():
    record = logging.LogRecord("schedules.execution", logging.INFO, __file__, 1, "Running %s", ("x",), None)
    record.schedule_id, record.execution_id, record.instance_id = "s-1", "e-1", "host-1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "Running x"
    assert (line["schedule_id"], line["execution_id"], line["instance_id"]) == ("s-1", "e-1", "host-1")
    assert line["level"] == "INFO" and line["logger"] == "schedules.execution"


def test_http_runner_sends_an_idempotency_key_per_attempt_of_an_execution(api_server, probe_settings):
    keys = []

    def fail_first(handler, server):
        keys.append(handler.headers.get("Idempotency-Key"))
        send(handler, 500 if len(keys) == 1 else 201, b'{"scan_id": "scan-1"}')

    probe_settings.SCAN_API_URL = api_server.serve("/scans", fail_first)
    request = request_for("example.com")
    outcome = run_with_retries(runner=http_runner, request=request, max_retries=1, backoff=0, stop=threading.Event())
    assert outcome.result is not None and outcome.result.scan_id == "scan-1"
    # A retry after a failure is a new scan; a delivery again of the same
    # execution (its instance died, history.queue.rescue_orphaned) repeats
    # the first key, so the scan API can answer it without scanning twice.
    assert keys == [str(request.execution_id), f"{request.execution_id}:2"]
    run_with_retries(runner=http_runner, request=request, max_retries=1, backoff=0, stop=threading.Event())
    assert keys[-1] == str(request.execution_id)
