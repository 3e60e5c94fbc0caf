"""Importing the API's answer: mapping, validation, idempotence, holdback, missing."""

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schedules.importer import apply as sync
from schedules.importer.apply import sync_schedules_from_api
from schedules.models import Schedule
from tests.api_server import EXAMPLE, entry, many

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """The change notices sent after commit (notify.py is another issue's)."""
    calls = []
    monkeypatch.setattr(sync, "publish_schedule_changes", lambda ids: calls.append(list(ids)))
    return calls


def _writes(queries):
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def _snapshot():
    return list(Schedule.objects.order_by("pk").values())


def test_original_example_maps_every_field(api_server, sync_settings, published, django_capture_on_commit_callbacks):
    url = api_server.serve_json("/schedules", EXAMPLE)
    with django_capture_on_commit_callbacks(execute=True):
        result = sync_schedules_from_api(url=url)
    assert (result["created"], result["updated"], result["skipped"], result["rejected"]) == (1, 0, 0, [])
    row = Schedule.objects.get(domain_config_id="abc-123")
    assert (row.domain, row.frequency, row.time_config, row.timezone) == ("example.com", "daily", {"hour": 2, "minute": 0}, "UTC")
    assert row.scan_settings == {
        "description": "Example domain", "allow_deep_scan": True, "maxPages": 50, "scanDepth": 5, "maxRetries": 3,
        "customPages": ["/page1", "/page2"], "accept_selector": "button[data-role='accept']",
    }
    assert row.enabled and not row.edited_manually
    assert row.next_run == row.compute_next_run() and row.next_run.hour == 2
    assert published == [[row.schedule_id]]


def test_timezone_and_unknown_settings_are_kept(api_server, sync_settings):
    answer = {"data": [entry("tz-1", "a.example.com", schedule={"frequency": "weekly", "timezone": "Europe/Berlin",
                                                                 "time": {"day": "monday", "hour": 3, "minute": 30}},
                             newFlag={"nested": [1, 2]})]}
    sync_schedules_from_api(url=api_server.serve_json("/s", answer))
    row = Schedule.objects.get(domain_config_id="tz-1")
    assert (row.timezone, row.time_config, row.scan_settings) == (
        "Europe/Berlin", {"day": "monday", "hour": 3, "minute": 30}, {"newFlag": {"nested": [1, 2]}})
    assert row.next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour == 3


def test_large_answer_then_unchanged_reimport_writes_nothing(api_server, sync_settings, published,
                                                            django_capture_on_commit_callbacks):
    url = api_server.serve_json("/big", many(2000))
    with django_capture_on_commit_callbacks(execute=True):
        first = sync_schedules_from_api(url=url)
    assert (first["created"], first["updated"], first["skipped"]) == (2000, 0, 0)
    assert Schedule.objects.count() == 2000 and not Schedule.objects.filter(next_run=None).exists()
    assert len(published) == 1 and len(published[0]) == 2000
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        second = sync_schedules_from_api(url=url)
    assert (second["created"], second["updated"], second["skipped"]) == (0, 0, 2000)
    assert _writes(queries.captured_queries) == []
    assert len(published) == 1  # no notice for a sync that changed nothing


def test_changed_entries_are_updated_in_bulk(api_server, sync_settings, published, django_capture_on_commit_callbacks):
    sync_schedules_from_api(url=api_server.serve_json("/v1", many(50)))
    before = {s.domain_config_id: s for s in Schedule.objects.all()}
    changed = many(50)
    changed["data"][0]["data"]["schedule"]["time"]["hour"] = 7
    changed["data"][1]["data"]["maxPages"] = 99
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        result = sync_schedules_from_api(url=api_server.serve_json("/v2", changed))
    assert (result["created"], result["updated"], result["skipped"]) == (0, 2, 48)
    writes = _writes(queries.captured_queries)
    # One bulk UPDATE, its rows in the change log, and the audit entries of the rows it changed (chained).
    assert len(writes) == 4, writes
    assert writes[0].startswith('INSERT INTO "schedule_changes"') and writes[1].startswith('UPDATE "schedules"')
    assert writes[2].startswith('INSERT INTO "audit_entries"') and writes[3].startswith('UPDATE "audit_chain_head"')
    first, second = Schedule.objects.get(domain_config_id="cfg-00000"), Schedule.objects.get(domain_config_id="cfg-00001")
    assert first.time_config["hour"] == 7 and first.next_run.hour == 7
    assert first.updated_at > before["cfg-00000"].updated_at
    assert second.scan_settings["maxPages"] == 99
    assert published[-1] == [first.schedule_id, second.schedule_id]
    assert sorted(result["changes"]) == ["update cfg-00000 (site0.example.com): time_config",
                                         "update cfg-00001 (site1.example.com): scan_settings"]


DAILY = {"frequency": "daily", "time": {"hour": 2, "minute": 0}}
INVALID = [
    pytest.param(entry("bad", schedule=...), "bad: has no schedule", "skip", id="no-schedule"),
    pytest.param(entry("bad", schedule=None), "bad: has no schedule", "skip", id="schedule-null"),
    pytest.param({"domain_config_id": "bad", "data": {"schedule": DAILY}}, "bad: domain: is required", "reject", id="missing-domain"),
    pytest.param(entry("bad", schedule={"frequency": "fortnightly", "time": {}}),
                 "bad: frequency: 'fortnightly' is not one of hourly, daily", "reject", id="unknown-frequency"),
    pytest.param(entry("bad", schedule={"frequency": "daily", "time": {"hour": 25, "minute": 0}}),
                 "bad: time_config.hour: 25 is out of range 0-23", "reject", id="hour-25"),
    pytest.param(entry("bad", schedule={"frequency": "weekly", "time": {"day": "funday", "hour": 1, "minute": 0}}),
                 "bad: time_config.day: 'funday' is not a weekday", "reject", id="funday"),
    pytest.param(entry("bad", schedule={"frequency": "daily", "time": {"hour": "2", "minute": 0}}),
                 "bad: time_config.hour: '2' is not an integer 0-23", "reject", id="hour-as-text"),
    pytest.param(entry("bad", schedule={"frequency": "daily", "time": [2, 0]}),
                 "bad: time_config: [2, 0] is not an object", "reject", id="time-as-list"),
    pytest.param(entry("bad", schedule={"frequency": "daily", "time": {"hour": 2, "minute": 0}, "timezone": "Mars/Base"}),
                 "bad: timezone: 'Mars/Base' is not an IANA time zone", "reject", id="bad-timezone"),
    pytest.param(entry("bad", schedule={**DAILY, "every": 2}), "bad: schedule.every: is not a schedule setting",
                 "reject", id="unknown-schedule-key"),
    pytest.param(entry("bad", domain=123), "bad: domain: 123 is not a string", "reject", id="domain-as-number"),
    pytest.param(entry("bad", domain="http://x.com/p"), "bad: domain: 'http://x.com/p' is not a host name", "reject", id="domain-url"),
    pytest.param(entry("bad", maxPages="fifty"), "bad: maxPages: 'fifty'", "reject", id="maxpages-text"),
    pytest.param(entry("bad", maxPages="50"), "bad: maxPages: '50' is not a PositiveIntegerField value", "reject", id="maxpages-numeric-text"),
    pytest.param(entry("bad", allow_deep_scan="yes"), "bad: allow_deep_scan: 'yes'", "reject", id="bool-as-text"),
    pytest.param(entry("bad", customPages=["page1"]), "bad: customPages: ['page1'] must be a list of paths", "reject", id="custom-pages"),
    pytest.param({"domain_config_id": "bad", "data": ["example.com"]}, "bad: data: ['example.com'] is not an object", "reject", id="data-as-list"),
    pytest.param({"domain_config_id": 42, "data": {"domain": "x.com", "schedule": DAILY}},
                 "entry #1: domain_config_id: 42 is not a non-empty string", "reject", id="id-as-number"),
    pytest.param("abc", "entry #1: str is not an object", "reject", id="entry-not-object"),
]


@pytest.mark.parametrize("bad_entry, reason, outcome", INVALID)
def test_invalid_entry_is_reported_and_changes_nothing_while_valid_ones_import(
    api_server, sync_settings, make_schedule, bad_entry, reason, outcome
):
    make_schedule(domain_config_id="bad", domain="kept.example.com", time_config={"hour": 4, "minute": 0})
    stored = _snapshot()
    answer = {"data": [entry("good-1", "good.example.com"), bad_entry]}
    result = sync_schedules_from_api(url=api_server.serve_json("/mixed", answer))
    assert result["created"] == 1 and Schedule.objects.filter(domain_config_id="good-1").exists()
    listed = result["rejected"] if outcome == "reject" else result["skipped_reasons"]
    assert len(listed) == 1 and listed[0].startswith(reason), listed
    assert result["updated"] == 0
    assert [row for row in _snapshot() if row["domain_config_id"] == "bad"] == stored


def test_every_copy_of_a_duplicate_id_is_rejected(api_server, sync_settings):
    answer = {"data": [entry("dup", "a.example.com"), entry("ok", "b.example.com"), entry("dup", "c.example.com")]}
    result = sync_schedules_from_api(url=api_server.serve_json("/dup", answer))
    assert result["rejected"] == ["dup: domain_config_id: appears 2 times in the answer"] * 2
    assert list(Schedule.objects.values_list("domain_config_id", flat=True)) == ["ok"]


def test_manual_edits_are_held_back_unless_forced(api_server, sync_settings, make_schedule):
    make_schedule(domain_config_id="abc-123", domain="mine.example.com", edited_manually=True)
    url = api_server.serve_json("/s", EXAMPLE)
    result = sync_schedules_from_api(url=url)
    assert (result["updated"], result["skipped"], result["held_back"]) == (0, 0, ["abc-123"])  # counted once
    assert Schedule.objects.get().domain == "mine.example.com"
    forced = sync_schedules_from_api(url=url, force=True)
    assert (forced["updated"], forced["held_back"]) == (1, [])
    row = Schedule.objects.get()
    assert (row.domain, row.edited_manually) == ("example.com", False)


def test_identical_manual_edit_is_just_skipped(api_server, sync_settings, make_schedule):
    data = EXAMPLE["data"][0]["data"]
    make_schedule(domain_config_id="abc-123", domain="example.com", edited_manually=True,
                  scan_settings={k: v for k, v in data.items() if k not in ("domain", "schedule")})
    result = sync_schedules_from_api(url=api_server.serve_json("/s", EXAMPLE))
    assert (result["skipped"], result["held_back"]) == (1, [])


def test_missing_schedules_are_left_alone_or_disabled_never_deleted(api_server, sync_settings, make_schedule):
    gone = make_schedule(domain_config_id="gone", domain="gone.example.com", from_api=True)
    hand = make_schedule(domain_config_id="hand", domain="hand.example.com", edited_manually=True, from_api=True)
    make_schedule(domain_config_id="admin-made", domain="mine.example.com", edited_manually=True)  # never missing
    url = api_server.serve_json("/s", EXAMPLE)
    result = sync_schedules_from_api(url=url)
    assert (result["missing"], result["disabled"]) == (["gone", "hand"], [])
    assert Schedule.objects.filter(enabled=True).count() == 4
    result = sync_schedules_from_api(url=url, disable_missing=True)
    assert (result["missing"], result["disabled"], result["held_back"]) == (["gone", "hand"], ["gone"], ["hand"])
    gone.refresh_from_db(), hand.refresh_from_db()
    assert (gone.enabled, gone.next_run, hand.enabled) == (False, None, True)
    with CaptureQueriesContext(connection) as queries:
        again = sync_schedules_from_api(url=url, disable_missing=True)
    assert again["disabled"] == [] and _writes(queries.captured_queries) == []
    forced = sync_schedules_from_api(url=url, disable_missing=True, force=True)
    assert forced["disabled"] == ["hand"] and Schedule.objects.count() == 4


def test_dry_run_reports_but_writes_nothing(api_server, sync_settings, make_schedule, published,
                                           django_capture_on_commit_callbacks):
    make_schedule(domain_config_id="abc-123", domain="old.example.com", from_api=True)
    make_schedule(domain_config_id="gone", domain="gone.example.com", from_api=True)
    stored = _snapshot()
    answer = copy.deepcopy(EXAMPLE)
    answer["data"].append(entry("new-1", "new.example.com"))
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        result = sync_schedules_from_api(url=api_server.serve_json("/s", answer), dry_run=True, disable_missing=True)
    assert (result["created"], result["updated"], result["disabled"], result["dry_run"]) == (1, 1, ["gone"], True)
    assert result["changes"] == [
        "update abc-123 (example.com): domain, scan_settings",
        "create new-1 (new.example.com): Daily at 02:00 UTC",
        "disable gone (gone.example.com): not in the API's answer",
    ]
    assert _writes(queries.captured_queries) == [] and _snapshot() == stored and published == []


def test_concurrent_edit_between_read_and_write_aborts_the_import(sync_settings, make_schedule, monkeypatch):
    row = make_schedule(domain_config_id="abc-123", domain="old.example.com")
    real_plan = sync._plan_entry

    def plan_then_someone_edits(**kwargs):
        real_plan(**kwargs)
        Schedule.objects.filter(pk=row.pk).update(domain="admin.example.com", updated_at=row.updated_at.replace(year=2030))

    monkeypatch.setattr(sync, "_plan_entry", plan_then_someone_edits)
    with pytest.raises(sync.SyncConflict, match="changed during the import"):
        sync.import_entries(entries=EXAMPLE["data"])
    assert Schedule.objects.get().domain == "admin.example.com"
