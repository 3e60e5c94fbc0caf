"""The upstream API client refuses redirects and echoes no answer body; name
resolution counts against a call's deadline (a stub resolver that answers in 4 s)."""

import logging
import time

import pytest
from django.urls import reverse

from scanner_project.outbound import addresses
from scanner_project.outbound.http import DeadlineExceeded, build_session
from schedules.importer import client as api_client
from schedules.importer.apply import SyncError, run_periodic_sync, sync_schedules_from_api
from tests.api_server import EXAMPLE, ApiServer, send

pytestmark = pytest.mark.django_db

BODY_SECRET = "body-secret-7c1e"  # what a redirect's or an error's page says


@pytest.fixture
def elsewhere():
    """Where a redirect points: a server that would answer a valid import."""
    with ApiServer() as server:
        server.serve_json("/schedules", EXAMPLE)
        yield server


def _redirect(status, location):
    def behave(handler, server):
        handler.send_response(status)
        handler.send_header("Location", location)
        body = f"<p>moved; {BODY_SECRET}</p>".encode()
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return behave


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_an_error_naming_status_and_redacted_location_and_is_never_followed(
        api_server, elsewhere, sync_settings, caplog, client, admin_user, status):
    location = elsewhere.url("/schedules").replace("http://", "http://u:pw-in-location@") + "?token=loc-secret"
    sync_settings.API_URL = api_server.serve("/moved", _redirect(status, location))
    with caplog.at_level(logging.DEBUG), pytest.raises(api_client.ApiRedirected) as raised:
        sync_schedules_from_api()
    message = str(raised.value)
    assert f"answered HTTP {status}" in message and "redirects are not followed" in message
    assert f"{elsewhere.url('/schedules')}?token=***" in message
    assert elsewhere.hits["/schedules"] == 0
    # the admin button and the periodic sync (the sync alert's text) say the same, with no body and no secret
    client.force_login(admin_user)
    page = client.post(reverse("admin:schedules_schedule_sync"), follow=True).content.decode()
    periodic = run_periodic_sync(instance_id="t", enabled=True, interval=60)
    assert "redirects are not followed" in page and "redirects are not followed" in periodic["error"]
    for text in (message, caplog.text, page, periodic["error"]):
        for secret in (BODY_SECRET, "pw-in-location", "loc-secret"):
            assert secret not in text
    assert elsewhere.hits["/schedules"] == 0


@pytest.mark.parametrize("status", [200, 404, 500])
def test_no_byte_of_an_answer_body_reaches_the_error(api_server, sync_settings, caplog, status):
    sync_settings.API_SYNC_RETRIES = 0
    url = api_server.serve("/page", lambda h, _: send(h, status, f"<html>{BODY_SECRET}</html>".encode(), "text/html"))
    with caplog.at_level(logging.DEBUG), pytest.raises(SyncError) as raised:
        sync_schedules_from_api(url=url)
    assert url in str(raised.value)
    assert BODY_SECRET not in str(raised.value) and BODY_SECRET not in caplog.text


def _slow_resolver(monkeypatch, seconds=4.0):
    real = addresses.resolve

    def resolve(host, port):
        time.sleep(seconds)  # the resolver's pace, not a wait for a condition
        return real("127.0.0.1", port)

    monkeypatch.setattr(addresses, "resolve", resolve)


def test_a_slow_resolver_is_cut_off_at_the_deadline(monkeypatch):
    _slow_resolver(monkeypatch)
    started = time.monotonic()
    with build_session(token="", retries=0, backoff=0, deadline=1.0) as session:
        with pytest.raises(DeadlineExceeded):
            session.get("http://slow-dns.example:9/", timeout=(10, 10))
    assert time.monotonic() - started < 1.5


def test_a_slow_resolver_ends_the_api_sync_within_its_deadline(monkeypatch, sync_settings):
    _slow_resolver(monkeypatch)
    sync_settings.REQUEST_TIMEOUT = 10
    started = time.monotonic()
    with pytest.raises(api_client.ApiDeadlineExceeded, match="within the API_SYNC_DEADLINE of 1 s"):
        sync_schedules_from_api(url="http://slow-dns.example:9/schedules")
    assert time.monotonic() - started < 1.5


def test_a_resolver_slower_than_the_connect_timeout_is_a_connect_timeout(monkeypatch):
    _slow_resolver(monkeypatch, seconds=2.0)
    started = time.monotonic()
    with build_session(token="", retries=0, backoff=0, deadline=5.0) as session:
        with pytest.raises(Exception) as raised:
            session.get("http://slow-dns.example:9/", timeout=(0.5, 0.5))
    assert "resolving slow-dns.example timed out" in str(raised.value)
    assert time.monotonic() - started < 1.5
