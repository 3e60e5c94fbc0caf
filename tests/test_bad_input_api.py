"""Bad input through the Python API, management commands, environment and API sync:
an error that names the field, argument or variable and the bad value, and no
stored row changed (schedules, scan_profiles, job_executions)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from schedules import services
from schedules.importer.apply import SyncError, sync_schedules_from_api
from schedules.repository import get_schedule_repository
from tests import cluster
from tests.api_server import closed_port_url, entry, huge_with_length, send
from tests.stored_rows import snapshot

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent

# --- Python API: create_schedule / update_schedule / get_schedule_repository() ---------------
# Decision: the API takes Python values as they are. Wrong types are refused (a
# ValidationError naming the field), never coerced: "yes" is not True, 42 is not "42".
VALUE_CASES = [
    pytest.param({"time_config": {"hour": 24, "minute": 0}}, "time_config", "time_config.hour: 24 is out of range", id="hour-24"),
    pytest.param({"time_config": {"hour": 2, "minute": 60}}, "time_config", "time_config.minute: 60 is out of range", id="minute-60"),
    pytest.param({"frequency": "weekly", "time_config": {"day": "funday", "hour": 2, "minute": 0}}, "time_config",
                 "time_config.day: 'funday' is not a weekday", id="funday"),
    pytest.param({"frequency": "monthly", "time_config": {"day": 32, "hour": 2, "minute": 0}}, "time_config",
                 "time_config.day: 32 is not a day of month", id="month-day-32"),
    pytest.param({"timezone": "Europe/Atlantis"}, "timezone", "timezone: 'Europe/Atlantis' is not an IANA time zone", id="timezone"),
    pytest.param({"frequency": "cron", "time_config": {"expression": "0 0 * * * *"}}, "time_config",
                 "time_config.expression: '0 0 * * * *' has 6 fields", id="cron-six-fields"),
    pytest.param({"domain": "example.com/path"}, "domain", "domain: 'example.com/path' is not a host name", id="domain-path"),
    pytest.param({"domain": "https://example.com"}, "domain", "domain: 'https://example.com' is not a host name", id="domain-scheme"),
    pytest.param({"domain": "exa mple.com"}, "domain", "domain: 'exa mple.com' is not a host name", id="domain-space"),
    pytest.param({"frequency": "fortnightly"}, "frequency", "frequency: 'fortnightly' is not one of hourly", id="frequency"),
    pytest.param({"domain_config_id": "cfg-b"}, "domain_config_id", "domain_config_id: 'cfg-b' is already used", id="duplicate-id"),
    pytest.param({"scan_settings": {"maxPages": "50"}}, "scan_settings",
                 "scan_settings.maxPages: '50' is not a PositiveIntegerField value", id="maxpages-as-text"),
    pytest.param({"scan_settings": {"allow_deep_scan": "yes"}}, "scan_settings", "scan_settings.allow_deep_scan: 'yes'",
                 id="deep-scan-as-text"),
    # wrong types
    pytest.param({"time_config": [2, 0]}, "time_config", "time_config: [2, 0] is not an object", id="time-config-list"),
    pytest.param({"time_config": '{"hour": 2, "minute": 0}'}, "time_config",
                 "time_config: '{\"hour\": 2, \"minute\": 0}' is not an object", id="time-config-string"),
    pytest.param({"scan_settings": [1]}, "scan_settings", "scan_settings: [1] is not an object", id="scan-settings-list"),
    pytest.param({"enabled": "yes"}, "enabled", "enabled: 'yes' is not True or False", id="enabled-yes"),
    pytest.param({"enabled": 1}, "enabled", "enabled: 1 is not True or False", id="enabled-1"),
    pytest.param({"domain": 123}, "domain", "domain: 123 is not a string", id="domain-number"),
    pytest.param({"domain_config_id": 42}, "domain_config_id", "domain_config_id: 42 is not a string", id="id-number"),
    pytest.param({"timezone": 1}, "timezone", "timezone: 1 is not a string", id="timezone-number"),
]

NEW = {"domain_config_id": "cfg-new", "domain": "new.example.com", "frequency": "daily",
       "time_config": {"hour": 2, "minute": 0}}


def _via_services_create(stored, changes):
    return services.create_schedule(**(NEW | changes))


def _via_services_update(stored, changes):
    return services.update_schedule(schedule_id=stored["a"].pk, **changes)


def _via_repository_create(stored, changes):
    return get_schedule_repository().create_schedule(**(NEW | changes))


def _via_repository_update(stored, changes):
    return get_schedule_repository().update_schedule(stored["a"].pk, **changes)


ENTRY_POINTS = [_via_services_create, _via_services_update, _via_repository_create, _via_repository_update]


@pytest.mark.parametrize("call", ENTRY_POINTS, ids=lambda f: f.__name__[5:])
@pytest.mark.parametrize("changes, field, fragment", VALUE_CASES)
def test_python_api_refuses_bad_value_naming_it_and_changes_nothing(stored, call, changes, field, fragment):
    with pytest.raises(ValidationError) as raised:
        call(stored, changes)
    assert field in raised.value.message_dict, raised.value.message_dict
    assert any(fragment in m for m in raised.value.message_dict[field]), raised.value.message_dict
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: services.update_schedule(schedule_id="00000000-0000-0000-0000-000000000000", domain="x.com"),
     Exception, "does not exist"),
    (lambda: services.update_schedule(schedule_id="not-a-uuid", domain="x.com"), ValidationError, "not-a-uuid"),
    (lambda: services.update_schedule(schedule_id="00000000-0000-0000-0000-000000000000", next_run=None),
     TypeError, "unknown field(s): next_run"),
    (lambda: services.create_schedule(**NEW, profile_id="00000000-0000-0000-0000-000000000000"), ValidationError,
     "profile"),
    (lambda: get_schedule_repository().delete_schedule("00000000-0000-0000-0000-000000000000"), None, None),
])
def test_python_api_unknown_ids_and_fields_change_nothing(stored, call, error, fragment):
    if error is None:
        assert call() is False
    else:
        with pytest.raises(error) as raised:
            call()
        assert fragment in str(raised.value)
    assert snapshot() == stored["snapshot"]


# --- management commands --------------------------------------------------------------------
COMMAND_CASES = [
    pytest.param("syncschedules", ["--url", "not-a-url"], "--url: 'not-a-url' is not an http:// or https:// URL",
                 id="sync-url-not-a-url"),
    pytest.param("syncschedules", ["--url", "ftp://example.com/x"], "--url: 'ftp://example.com/x' is not an http",
                 id="sync-url-ftp"),
    pytest.param("syncschedules", ["--url", "CLOSED"], "API sync failed (--url): could not connect to http://127.0.0.1:",
                 id="sync-url-unreachable"),
    pytest.param("cleanuphistory", ["--days", "-1"], "--days: -1 must be at least 1", id="cleanup-days-negative"),
    pytest.param("cleanuphistory", ["--days", "0"], "--days: 0 must be at least 1", id="cleanup-days-zero"),
    pytest.param("cleanuphistory", ["--days", "abc"], "--days: 'abc' is not an integer", id="cleanup-days-abc"),
    pytest.param("cleanuphistory", ["--days", "1", "--batch-size", "0"], "--batch-size: 0 must be at least 1",
                 id="cleanup-batch-size-zero"),
    pytest.param("runscheduler", ["--max-workers", "0"], "--max-workers: 0 must be at least 1", id="max-workers-0"),
    pytest.param("runscheduler", ["--max-workers", "abc"], "--max-workers: 'abc' is not an integer", id="max-workers-abc"),
]


def _args(args):
    return [closed_port_url() if a == "CLOSED" else a for a in args]


@pytest.mark.parametrize("command, args, fragment", COMMAND_CASES)
def test_command_refuses_bad_argument_naming_it_and_changes_nothing(stored, sync_settings, command, args, fragment):
    with pytest.raises(CommandError) as raised:
        call_command(command, *_args(args))
    assert fragment in str(raised.value)
    assert snapshot() == stored["snapshot"]


def test_cleanup_days_passed_as_keyword_is_still_checked(stored):
    with pytest.raises(CommandError, match="--days: -1 must be at least 1"):
        call_command("cleanuphistory", days=-1, batch_size=5)
    with pytest.raises(CommandError, match="--batch-size: 0 must be at least 1"):
        call_command("cleanuphistory", days=5, batch_size=0)
    assert snapshot() == stored["snapshot"]


def _manage(*args, env=None, timeout=60):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    full = base | {"DATABASE_URL": cluster.test_database_url(), "REDIS_URL": os.environ["REDIS_URL"]} | (env or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args, fragment", [
    (["syncschedules", "--url", "not-a-url"], "--url: 'not-a-url' is not an http:// or https:// URL"),
    (["cleanuphistory", "--days", "-1"], "--days: -1 must be at least 1"),
    (["runscheduler", "--max-workers", "abc"], "--max-workers: 'abc' is not an integer"),
])
def test_command_from_the_shell_exits_non_zero_naming_the_argument(stored, args, fragment):
    result = _manage(*args)
    assert result.returncode != 0 and fragment in result.stderr, result.stderr
    assert snapshot() == stored["snapshot"]


# --- environment variables: `manage.py check` stops, naming the variable --------------------
ENV_CASES = [
    ({"MAX_WORKERS": "abc"}, "MAX_WORKERS='abc' is invalid: expected an integer"),
    ({"MAX_WORKERS": "0"}, "MAX_WORKERS='0' is invalid: must be at least 1"),
    ({"MAX_WORKERS": "501"}, "MAX_WORKERS='501' is invalid: must be at most 500"),
    ({"JOB_COALESCE": "ture"}, "JOB_COALESCE='ture' is invalid: expected true or false"),
    ({"DEBUG": "maybe"}, "DEBUG='maybe' is invalid: expected true or false"),
    ({"REDIS_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "abc"}, "REDIS_PORT='abc' is invalid: expected an integer"),
    ({"REDIS_URL": "", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "99999"}, "REDIS_PORT='99999' is invalid: must be at most 65535"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is invalid: expected redis://"),
    ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL='nosuchdb://x' is invalid: not a database URL"),
    ({"DATABASE_URL": "mysql://u:hunter2-db-pw@db/x"}, "DATABASE_URL='mysql://***@db/x' is invalid: not a database URL"),
    ({"TIME_ZONE": "Mars/Base"}, "TIME_ZONE='Mars/Base' is invalid: not an IANA time zone"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is invalid: expected one of text, json"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose' is invalid: expected one of debug, info"),
    ({"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT='soon' is invalid: expected a number"),
    ({"SECURE_HSTS_SECONDS": "-1"}, "SECURE_HSTS_SECONDS='-1' is invalid: must be at least 0"),
    ({"API_SYNC_RETRIES": "11"}, "API_SYNC_RETRIES='11' is invalid: must be at most 10"),
    ({"METRICS_PORT": "70000"}, "METRICS_PORT='70000' is invalid: must be at most 65535"),
]


@pytest.mark.parametrize("env, message", ENV_CASES, ids=[next(iter(e)) if "REDIS_HOST" not in e else "REDIS_PORT"
                                                          for e, _ in ENV_CASES])
def test_bad_environment_variable_stops_manage_py_check_naming_it(stored, env, message):
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "hunter2-db-pw" not in result.stderr + result.stdout
    assert snapshot() == stored["snapshot"]


# --- API sync answers: failed fetches and invalid entries --------------------------------------
FAILED_FETCHES = [
    pytest.param(lambda s: s.url("/missing"), "answered HTTP 404", id="http-404"),
    pytest.param(lambda s: s.serve_json("/err", {"detail": "boom"}, status=500), "kept answering with a server error",
                 id="http-500"),
    pytest.param(lambda s: s.serve("/html", lambda h, _: send(h, 200, b"<html>", "text/html")), "did not answer JSON",
                 id="not-json"),
    pytest.param(lambda s: s.serve_json("/list", [1, 2]), "answered list JSON", id="top-level-list"),
    pytest.param(lambda s: s.serve_json("/nodata", {"items": []}), "expected an object", id="no-data-key"),
    pytest.param(lambda s: s.serve_json("/dict", {"data": {}}), 'answered "data" as dict', id="data-not-list"),
    pytest.param(lambda s: s.serve("/huge", huge_with_length), "the limit is", id="too-large"),
    pytest.param(lambda s: closed_port_url(), "could not connect", id="unreachable"),
    pytest.param(lambda s: "not-a-url", "'not-a-url' is not an http:// or https:// URL", id="not-a-url"),
]


@pytest.mark.parametrize("make_url, message", FAILED_FETCHES)
def test_failed_fetch_raises_and_changes_nothing(stored, api_server, sync_settings, make_url, message):
    with pytest.raises(SyncError, match=message.replace("(", r"\(")):
        sync_schedules_from_api(url=make_url(api_server), disable_missing=True, force=True)
    assert snapshot() == stored["snapshot"]


DAILY = {"frequency": "daily", "time": {"hour": 2, "minute": 0}}
INVALID_ENTRIES = [
    pytest.param(entry("cfg-a", schedule={"frequency": "daily", "time": {"hour": 24, "minute": 0}}),
                 "cfg-a: time_config.hour: 24 is out of range 0-23", id="hour-24"),
    pytest.param(entry("cfg-a", schedule={"frequency": "daily", "time": {"hour": 2, "minute": 60}}),
                 "cfg-a: time_config.minute: 60 is out of range 0-59", id="minute-60"),
    pytest.param(entry("cfg-a", schedule={"frequency": "weekly", "time": {"day": "funday", "hour": 2, "minute": 0}}),
                 "cfg-a: time_config.day: 'funday' is not a weekday", id="funday"),
    pytest.param(entry("cfg-a", schedule={"frequency": "monthly", "time": {"day": 32, "hour": 2, "minute": 0}}),
                 "cfg-a: time_config.day: 32 is not a day of month", id="month-day-32"),
    pytest.param(entry("cfg-a", schedule={**DAILY, "timezone": "Europe/Atlantis"}),
                 "cfg-a: timezone: 'Europe/Atlantis' is not an IANA time zone", id="timezone"),
    pytest.param(entry("cfg-a", schedule={"frequency": "cron", "time": {"expression": "0 0 * * * *"}}),
                 "cfg-a: time_config.expression: '0 0 * * * *' has 6 fields", id="cron-six-fields"),
    pytest.param(entry("cfg-a", "a.example.com/path"), "cfg-a: domain: 'a.example.com/path' is not a host name", id="domain-path"),
    pytest.param(entry("cfg-a", "https://a.example.com"), "cfg-a: domain: 'https://a.example.com' is not a host name",
                 id="domain-scheme"),
    pytest.param(entry("cfg-a", "a example.com"), "cfg-a: domain: 'a example.com' is not a host name", id="domain-space"),
    pytest.param(entry("cfg-a", schedule={"frequency": "fortnightly", "time": {}}),
                 "cfg-a: frequency: 'fortnightly' is not one of", id="frequency"),
    pytest.param(entry("cfg-a", schedule={"frequency": "daily", "time": "25:00"}),
                 "cfg-a: schedule.time: '25:00' is neither \"HH:MM\" (00:00-23:59) nor an object", id="time-not-hh-mm"),
    pytest.param(entry("cfg-a", maxPages="50"), "cfg-a: maxPages: '50' is not a PositiveIntegerField value", id="maxpages-text"),
    pytest.param(entry("cfg-a", allow_deep_scan="yes"), "cfg-a: allow_deep_scan: 'yes'", id="deep-scan-yes"),
]


@pytest.mark.parametrize("bad, reason", INVALID_ENTRIES)
def test_invalid_entry_for_a_stored_schedule_is_rejected_and_changes_nothing(stored, api_server, sync_settings, bad,
                                                                           reason):
    # cfg-b is in the answer unchanged, so only cfg-a could change; force would overwrite hand edits.
    same_b = entry("cfg-b", "b.example.com", schedule={"frequency": "weekly", "timezone": "Europe/Berlin",
                                                        "time": {"day": "monday", "hour": 3, "minute": 30}})
    url = api_server.serve_json("/s", {"data": [bad, same_b]})
    result = sync_schedules_from_api(url=url, force=True, disable_missing=True)
    assert result["rejected"] == [result["rejected"][0]] and result["rejected"][0].startswith(reason), result["rejected"]
    assert (result["created"], result["updated"], result["disabled"]) == (0, 0, [])
    assert snapshot() == stored["snapshot"]


def test_duplicate_ids_in_the_answer_change_nothing(stored, api_server, sync_settings):
    url = api_server.serve_json("/dup", {"data": [entry("cfg-a", "x.example.com"), entry("cfg-a", "y.example.com")]})
    result = sync_schedules_from_api(url=url)
    assert result["rejected"] == ["cfg-a: domain_config_id: appears 2 times in the answer"] * 2
    assert snapshot() == stored["snapshot"]
