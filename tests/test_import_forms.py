"""The importer accepts ordinary upstream JSON, counts each entry once, and only
ever calls the API's own schedules missing."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from schedules.importer.apply import TooManyMissing, import_entries
from schedules.models import Schedule
from tests.api_server import entry

pytestmark = pytest.mark.django_db


def test_time_as_hh_mm_is_accepted_like_the_object_form():
    result = import_entries(entries=[entry("s", schedule={"frequency": "daily", "time": "02:30"}),
                                     entry("w", schedule={"frequency": "weekly", "time": {"day": "monday", "hour": 4,
                                                                                            "minute": 5}})])
    assert result["rejected"] == [] and result["created"] == 2
    assert Schedule.objects.get(domain_config_id="s").time_config == {"hour": 2, "minute": 30}


@pytest.mark.parametrize("time", ["24:00", "2:5", "02:60", "0200", " 02:00"])
def test_a_time_that_is_not_hh_mm_is_rejected_naming_it(time):
    result = import_entries(entries=[entry("s", schedule={"frequency": "daily", "time": time})])
    assert result["rejected"] == [f'''s: schedule.time: {time!r} is neither "HH:MM" (00:00-23:59) nor an object''']
    assert not Schedule.objects.exists()


def test_null_means_not_set_for_optional_fields(settings):
    settings.TIME_ZONE = "UTC"
    answer = entry("n", accept_selector=None, maxPages=None, customPages=["/p"],
                   schedule={"frequency": "daily", "time": "03:00", "timezone": None})
    result = import_entries(entries=[answer])
    assert result["rejected"] == [], result["rejected"]
    row = Schedule.objects.get()
    assert (row.timezone, row.scan_settings) == ("UTC", {"customPages": ["/p"]})


def test_each_entry_is_counted_exactly_once(make_schedule):
    make_schedule(domain_config_id="same", domain="same.example.com", from_api=True)
    make_schedule(domain_config_id="hand", domain="hand.example.com", edited_manually=True, from_api=True)
    make_schedule(domain_config_id="changed", domain="changed.example.com", from_api=True)
    entries = [entry("same", "same.example.com"), entry("hand", "other.example.com"),
               entry("changed", "changed.example.com", maxPages=3), entry("new", "new.example.com"),
               entry("none", schedule=None), entry("bad", "bad domain")]
    result = import_entries(entries=entries)
    assert (result["created"], result["updated"], result["skipped"]) == (1, 1, 2)
    assert (len(result["rejected"]), result["held_back"]) == (1, ["hand"])
    counted = result["created"] + result["updated"] + result["skipped"] + len(result["rejected"]) + len(result["held_back"])
    assert counted == len(entries)


def test_a_schedule_made_in_admin_is_manual_from_birth_and_never_missing(admin_client):
    form = {"domain_config_id": "by-hand", "domain": "hand.example.com", "profile": "", "enabled": "on",
            "frequency": "daily", "time_config": '{"hour": 2, "minute": 0}', "timezone": "UTC", "scan_settings": "{}"}
    response = admin_client.post(reverse("admin:schedules_schedule_add"), form)
    assert response.status_code == 302, response.content[:2000]
    row = Schedule.objects.get(domain_config_id="by-hand")
    assert (row.edited_manually, row.from_api) == (True, False)
    result = import_entries(entries=[entry("from-api", "api.example.com")], disable_missing=True)
    assert (result["missing"], result["disabled"]) == ([], [])
    assert Schedule.objects.get(domain_config_id="by-hand").enabled


def test_an_imported_schedule_belongs_to_the_api():
    import_entries(entries=[entry("a"), entry("b")])
    assert set(Schedule.objects.values_list("from_api", "edited_manually")) == {(True, False)}
    result = import_entries(entries=[entry("a")], disable_missing=True)
    assert (result["missing"], result["disabled"]) == (["b"], ["b"])


def test_disable_missing_refuses_to_disable_more_than_half_without_force(make_schedule):
    for n in range(4):
        make_schedule(domain_config_id=f"api-{n}", from_api=True)
    with pytest.raises(TooManyMissing, match="lacks 4 of the 4 schedules the API created"):
        import_entries(entries=[], disable_missing=True)
    assert Schedule.objects.filter(enabled=True).count() == 4
    half = import_entries(entries=[entry("api-0", "site1.example.com"), entry("api-1", "site2.example.com")],
                          disable_missing=True)
    assert half["disabled"] == ["api-2", "api-3"]  # exactly half is allowed
    forced = import_entries(entries=[], disable_missing=True, force=True)
    assert sorted(forced["disabled"]) == ["api-0", "api-1"]


def test_the_command_refuses_an_empty_answer_with_disable_missing(api_server, sync_settings, make_schedule):
    make_schedule(domain_config_id="api-0", from_api=True)
    url = api_server.serve_json("/empty", {"data": []})
    with pytest.raises(CommandError, match="refusing to disable more than half") as raised:
        call_command("syncschedules", "--url", url, "--disable-missing")
    assert raised.value.returncode == 1 and Schedule.objects.get().enabled
    call_command("syncschedules", "--url", url, "--disable-missing", "--force")
    assert not Schedule.objects.get().enabled


def test_the_command_exits_3_when_every_entry_was_rejected(api_server, sync_settings):
    url = api_server.serve_json("/bad", {"data": [entry("bad", "not a domain")]})
    with pytest.raises(CommandError, match="1 entries were rejected") as raised:
        call_command("syncschedules", "--url", url)
    assert raised.value.returncode == 3 and not Schedule.objects.exists()


def test_the_readme_example_of_every_accepted_form_imports_cleanly():
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    answer = json.loads(re.search(r"```json\n(.*?)```", readme, flags=re.S).group(1))
    result = import_entries(entries=answer["data"])
    assert (result["created"], result["rejected"], result["skipped_reasons"]) == (
        len(answer["data"]) - 1, [], ["no-schedule-yet: has no schedule"])
    assert Schedule.objects.get(domain_config_id="daily-hh-mm").time_config == {"hour": 2, "minute": 30}
