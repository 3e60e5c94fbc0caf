"""Reading the API over real sockets: retries, timeouts, deadline, size cap, bad answers."""

import logging
import time

import pytest

from schedules.importer import client as api_client
from schedules.importer.apply import SyncError, sync_schedules_from_api
from schedules.models import Schedule
from tests.api_server import (
    EXAMPLE,
    closed_port_url,
    drip,
    hang,
    huge_with_length,
    huge_without_length,
    json_answer,
    send,
    sequence,
    trickle_headers,
)
from tests.conftest import API_TOKEN_FOR_TESTS

pytestmark = pytest.mark.django_db


def _server_error(handler, server):
    send(handler, 500, b"<h1>oops</h1>", "text/html")


def _snapshot():
    return list(Schedule.objects.order_by("pk").values())


@pytest.fixture
def stored(make_schedule):
    """Rows that a failed sync must leave exactly as they are."""
    make_schedule(domain_config_id="abc-123", domain="old.example.com", time_config={"hour": 5, "minute": 0})
    make_schedule(domain_config_id="other", domain="other.example.com")
    return _snapshot()


def test_retries_server_errors_with_backoff_then_imports(api_server, sync_settings, stored):
    url = api_server.serve("/flaky", sequence(_server_error, _server_error, json_answer(EXAMPLE)))
    result = sync_schedules_from_api(url=url)
    assert api_server.hits["/flaky"] == 3
    assert (result["created"], result["updated"], result["skipped"]) == (0, 1, 0)
    assert Schedule.objects.get(domain_config_id="abc-123").domain == "example.com"


FAILURES = [
    pytest.param(lambda s: s.serve("/down", _server_error), api_client.ApiHttpError,
                 "kept answering with a server error (5xx) after 3 attempts", id="500-forever"),
    pytest.param(lambda s: s.url("/nowhere"), api_client.ApiHttpError, "answered HTTP 404 Not Found", id="404"),
    pytest.param(lambda s: s.serve("/html", lambda h, _: send(h, 200, b"<!doctype html><p>login</p>", "text/html")),
                 api_client.ApiBadAnswer, "did not answer JSON (Content-Type 'text/html', 27 bytes)", id="html"),
    pytest.param(lambda s: s.serve_json("/list", [EXAMPLE["data"][0]]), api_client.ApiBadAnswer,
                 "answered list JSON; expected an object", id="json-list"),
    pytest.param(lambda s: s.serve_json("/dict", {"data": {}}), api_client.ApiBadAnswer,
                 'answered "data" as dict; expected a list', id="data-not-a-list"),
    pytest.param(lambda s: s.serve_json("/nodata", {"results": []}), api_client.ApiBadAnswer,
                 "expected an object", id="no-data-key"),
    pytest.param(lambda s: s.serve("/huge", huge_without_length), api_client.ApiTooLarge,
                 "sent more than 2097152 bytes", id="over-cap-streamed"),
    pytest.param(lambda s: s.serve("/huge-declared", huge_with_length), api_client.ApiTooLarge,
                 "announced 52428800 bytes", id="over-cap-declared"),
    pytest.param(lambda s: s.serve("/drip", drip), api_client.ApiDeadlineExceeded,
                 "did not finish its answer within the API_SYNC_DEADLINE of 1 s", id="drip-past-deadline"),
    pytest.param(lambda s: s.serve("/trickle", trickle_headers), api_client.ApiDeadlineExceeded,
                 "within the API_SYNC_DEADLINE of 1 s", id="headers-trickle-past-deadline"),
    pytest.param(lambda s: s.serve("/hang", hang), api_client.ApiUnreachable,
                 "did not answer within the REQUEST_TIMEOUT of 0.3 s", id="read-timeout"),
    pytest.param(lambda s: closed_port_url(), api_client.ApiUnreachable,
                 "could not connect to http://127.0.0.1:", id="connection-refused"),
]


@pytest.mark.parametrize("route, error, message", FAILURES)
def test_a_failed_fetch_changes_nothing_and_says_why(api_server, sync_settings, stored, route, error, message, caplog):
    url = route(api_server)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as raised:
        sync_schedules_from_api(url=url)
    assert isinstance(raised.value, SyncError)
    assert message in str(raised.value)
    assert url.split("?")[0] in str(raised.value)
    assert _snapshot() == stored
    assert time.monotonic() - started < 5
    assert API_TOKEN_FOR_TESTS not in str(raised.value) and API_TOKEN_FOR_TESTS not in caplog.text


def test_server_errors_are_retried_but_404_is_not(api_server, sync_settings):
    api_server.serve("/down", _server_error)
    with pytest.raises(api_client.ApiHttpError):
        sync_schedules_from_api(url=api_server.url("/down"))
    with pytest.raises(api_client.ApiHttpError):
        sync_schedules_from_api(url=api_server.url("/gone"))
    assert (api_server.hits["/down"], api_server.hits["/gone"]) == (3, 1)


def test_drip_is_cut_off_at_the_deadline_not_after_the_whole_body(api_server, sync_settings):
    sync_settings.API_SYNC_DEADLINE = 0.5
    url = api_server.serve("/drip", drip)
    started = time.monotonic()
    with pytest.raises(api_client.ApiDeadlineExceeded):
        sync_schedules_from_api(url=url)
    assert 0.4 < time.monotonic() - started < 2


def test_token_is_sent_as_bearer_and_never_logged_or_shown(api_server, sync_settings, caplog):
    url = api_server.serve("/auth", lambda h, _: send(h, 401, b'{"detail": "bad token"}'))
    secret_url = url.replace("http://", "http://user:hunter2@") + "?api_key=k-123"
    with caplog.at_level(logging.DEBUG), pytest.raises(api_client.ApiHttpError) as raised:
        sync_schedules_from_api(url=secret_url)
    assert api_server.authorization == [f"Bearer {API_TOKEN_FOR_TESTS}"]
    message = str(raised.value)
    assert "answered HTTP 401" in message and "/auth?api_key=***" in message
    assert API_TOKEN_FOR_TESTS not in caplog.text
    # urllib3's own DEBUG line shows the request path; our messages never show secrets.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("schedules"))
    for secret in (API_TOKEN_FOR_TESTS, "hunter2", "k-123"):
        assert secret not in message and secret not in ours


def test_no_authorization_header_without_a_token(api_server, sync_settings):
    sync_settings.API_TOKEN = ""
    sync_schedules_from_api(url=api_server.serve_json("/ok", EXAMPLE))
    assert api_server.authorization == [None]


def test_missing_url_is_a_sync_error(sync_settings):
    with pytest.raises(api_client.ApiNotConfigured, match="API_URL is not set"):
        sync_schedules_from_api()


def test_metrics_count_outcomes_and_failures(api_server, sync_settings):
    from prometheus_client import REGISTRY

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    created, failures = value("scanner_sync_entries_total", outcome="created"), value("scanner_sync_failures_total")
    sync_schedules_from_api(url=api_server.serve_json("/ok", EXAMPLE))
    with pytest.raises(SyncError):
        sync_schedules_from_api(url=api_server.url("/missing"))
    assert value("scanner_sync_entries_total", outcome="created") == created + 1
    assert value("scanner_sync_failures_total") == failures + 1


def test_headers_trickled_past_the_deadline_end_the_sync_within_it(api_server, sync_settings):
    # Each header byte arrives well inside REQUEST_TIMEOUT, so only the overall
    # deadline can end this; the message names that deadline, not the timeout.
    sync_settings.REQUEST_TIMEOUT, sync_settings.API_SYNC_DEADLINE = 0.5, 1.5
    url = api_server.serve("/trickle", trickle_headers)
    started = time.monotonic()
    with pytest.raises(api_client.ApiDeadlineExceeded, match="within the API_SYNC_DEADLINE of 1.5 s"):
        sync_schedules_from_api(url=url)
    assert time.monotonic() - started < 1.5 + 1


def test_through_an_http_proxy_a_trickling_answer_still_ends_at_the_deadline(api_server, sync_settings, monkeypatch):
    # API calls honour HTTP_PROXY; the socket to the proxy is bounded like any other.
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", api_server.url(""))
    api_server.serve("http://api.invalid/schedules", trickle_headers)  # a proxy sees the absolute URL
    sync_settings.REQUEST_TIMEOUT, sync_settings.API_SYNC_DEADLINE = 0.5, 1.5
    started = time.monotonic()
    with pytest.raises(api_client.ApiDeadlineExceeded, match="within the API_SYNC_DEADLINE of 1.5 s"):
        sync_schedules_from_api(url="http://api.invalid/schedules")
    assert api_server.hits["http://api.invalid/schedules"] == 1
    assert time.monotonic() - started < 1.5 + 1
