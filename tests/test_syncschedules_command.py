"""The syncschedules command, the admin button and the periodic sync."""

import logging

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse

from schedules.importer import apply as sync
from schedules.importer.apply import PERIODIC_LOCK_KEY, run_periodic_sync
from schedules.models import Schedule
from tests.api_server import EXAMPLE, closed_port_url, entry, send
from tests.conftest import API_TOKEN_FOR_TESTS

pytestmark = pytest.mark.django_db

MIXED = {"data": [*EXAMPLE["data"], entry("bad", schedule={"frequency": "daily", "time": {"hour": 25, "minute": 0}}),
                  entry("none", schedule=None)]}


def _call(*args, returncode: int = 0):
    from io import StringIO

    out = StringIO()
    try:
        call_command("syncschedules", *args, stdout=out)
    except CommandError as exc:
        if exc.returncode != returncode or not returncode:
            raise
        return out.getvalue() + str(exc)
    assert returncode == 0, out.getvalue()
    return out.getvalue()


def test_command_prints_counts_invalid_entries_and_reasons(api_server, sync_settings):
    sync_settings.API_URL = api_server.serve_json("/s", MIXED)
    out = _call(returncode=3)  # documented: some entries rejected, the valid ones imported
    assert "created 1, updated 0, skipped 1, invalid 1, held back 0, missing 0, disabled 0" in out
    assert out.endswith("1 entries were rejected (listed above); the valid ones were imported")
    assert "Invalid entries:\n  bad: time_config.hour: 25 is out of range 0-23" in out
    assert "Skipped:\n  none: has no schedule" in out
    assert "create abc-123 (example.com): Daily at 02:00 UTC" in out
    assert "created 0, updated 0, skipped 2" in _call(returncode=3)


def test_command_url_dry_run_force_and_disable_missing(api_server, sync_settings, make_schedule):
    make_schedule(domain_config_id="abc-123", domain="mine.example.com", edited_manually=True, from_api=True)
    make_schedule(domain_config_id="gone", domain="gone.example.com", from_api=True)
    url = api_server.serve_json("/other", EXAMPLE)
    out = _call("--url", url, "--dry-run", "--disable-missing")
    assert out.startswith("dry run, nothing written: would have created 0, updated 0, skipped 0, invalid 0, held back 1")
    assert "Held back (edited by hand; use --force):\n  abc-123" in out
    assert "disable gone (gone.example.com)" in out
    assert Schedule.objects.filter(enabled=True).count() == 2
    out = _call("--url", url, "--force", "--disable-missing")
    assert "updated 1, skipped 0, invalid 0, held back 0, missing 1, disabled 1" in out
    assert Schedule.objects.get(domain_config_id="abc-123").domain == "example.com"
    assert not Schedule.objects.get(domain_config_id="gone").enabled


@pytest.mark.parametrize("make_url, message", [
    (lambda s: s.url("/missing"), "answered HTTP 404"),
    (lambda s: s.serve("/html", lambda h, _: send(h, 200, b"<html></html>", "text/html")), "did not answer JSON"),
    (lambda s: s.serve_json("/shape", {"data": {}}), "expected a list"),
    (lambda s: closed_port_url(), "could not connect"),
])
def test_command_fails_with_non_zero_status_when_the_api_cannot_be_read(api_server, sync_settings, make_url, message):
    url = make_url(api_server)
    with pytest.raises(CommandError, match=message) as raised:
        _call("--url", url)
    assert raised.value.returncode == 1 and API_TOKEN_FOR_TESTS not in str(raised.value)
    with pytest.raises(SystemExit) as exited:  # as from the shell
        from django.core.management import ManagementUtility

        ManagementUtility(["manage.py", "syncschedules", "--url", url]).execute()
    assert exited.value.code == 1


def test_command_without_any_url_fails(sync_settings):
    with pytest.raises(CommandError, match="API_URL is not set"):
        _call()




def test_admin_button_syncs_and_shows_the_result(client, staff, api_server, sync_settings):
    sync_settings.API_URL = api_server.serve_json("/s", MIXED)
    staff("view_schedule", "change_schedule")
    listing = client.get(reverse("admin:schedules_schedule_changelist"))
    assert b"Sync from API now" in listing.content
    response = client.post(reverse("admin:schedules_schedule_sync"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:schedules_schedule_changelist")
    shown = [str(m) for m in response.context["messages"]]
    assert shown[0] == "API sync: created 1, updated 0, skipped 1, held back 0."
    assert shown[1] == "1 invalid entries: bad: time_config.hour: 25 is out of range 0-23"
    assert Schedule.objects.filter(domain_config_id="abc-123").exists()


def test_admin_button_shows_a_failed_fetch_as_an_error(admin_client, api_server, sync_settings):
    sync_settings.API_URL = api_server.url("/missing")
    response = admin_client.post(reverse("admin:schedules_schedule_sync"), follow=True)
    [message] = list(response.context["messages"])
    assert message.level_tag == "error" and "answered HTTP 404" in str(message)


def test_admin_button_needs_change_permission_and_post(client, staff, api_server, sync_settings):
    sync_settings.API_URL = api_server.serve_json("/s", EXAMPLE)
    staff("view_schedule")
    assert b"Sync from API now" not in client.get(reverse("admin:schedules_schedule_changelist")).content
    assert client.post(reverse("admin:schedules_schedule_sync")).status_code == 403
    staff("view_schedule", "change_schedule")
    assert client.get(reverse("admin:schedules_schedule_sync")).status_code == 405
    assert api_server.hits["/s"] == 0 and not Schedule.objects.exists()


def test_periodic_sync_runs_once_per_interval_across_instances(api_server, sync_settings, redis_client):
    sync_settings.ENABLE_API_SYNC = True
    sync_settings.API_SYNC_INTERVAL = 300
    sync_settings.API_URL = api_server.serve_json("/s", EXAMPLE)
    first = run_periodic_sync(instance_id="host-a-1")
    assert first["created"] == 1
    assert run_periodic_sync(instance_id="host-b-2") is None
    assert run_periodic_sync(instance_id="host-a-1") is None
    assert api_server.hits["/s"] == 1
    assert cache.get(PERIODIC_LOCK_KEY) == "host-a-1"
    ttl = redis_client.ttl(cache.make_key(PERIODIC_LOCK_KEY))
    assert 280 <= ttl <= 295  # expires just before the next interval
    cache.delete(PERIODIC_LOCK_KEY)  # the interval has passed
    assert run_periodic_sync(instance_id="host-b-2")["skipped"] == 1


def test_periodic_sync_never_raises_and_respects_the_switch(api_server, sync_settings, caplog, monkeypatch):
    sync_settings.API_URL = closed_port_url()
    assert run_periodic_sync(instance_id="a") is None  # ENABLE_API_SYNC is off
    sync_settings.ENABLE_API_SYNC = True
    with caplog.at_level(logging.WARNING):
        result = run_periodic_sync(instance_id="a")
    assert "could not connect" in result["error"] and "could not connect" in caplog.text
    cache.delete(PERIODIC_LOCK_KEY)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(sync, "import_entries", broken)
    sync_settings.API_URL = api_server.serve_json("/s", EXAMPLE)
    assert run_periodic_sync(instance_id="a") == {"error": "RuntimeError: database went away"}
    assert API_TOKEN_FOR_TESTS not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_runtime_built_with_api_sync_on_syncs_whatever_the_setting_says(api_server, sync_settings):
    """EnhancedScheduler(enable_api_sync=True): the runtime's own switch and
    interval decide, not ENABLE_API_SYNC read again inside the sync."""
    from schedules.runtime import SchedulerService

    sync_settings.ENABLE_API_SYNC = False
    sync_settings.API_URL = api_server.serve_json("/s", EXAMPLE)
    service = SchedulerService(instance_id="sync-on", enable_api_sync=True, api_sync_interval=120)
    service._api_sync()
    assert Schedule.objects.filter(domain_config_id="abc-123").exists()
    assert api_server.hits["/s"] == 1
    cache.delete(PERIODIC_LOCK_KEY)
