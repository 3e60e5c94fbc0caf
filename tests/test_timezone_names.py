"""Only IANA zones of places: ``localtime`` (the host's own zone: two hosts
would compute different slots for one schedule), ``posixrules``, ``Factory``
and names that are not canonical are refused in admin, the import, the Python
API and TIME_ZONE, naming the field and the value."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from scanner_project.timezones import zone_names
from schedules import services
from schedules.importer.apply import import_entries
from schedules.timing.triggers import TimeConfigError, build_trigger
from tests.api_server import entry
from tests.stored_rows import snapshot
from tests.test_settings import load

NOT_PLACES = ["localtime", "posixrules", "Factory"]
NOT_CANONICAL = ["posix/Europe/Berlin", "right/UTC", "Europe/Berlin/", "europe/berlin", "/etc/localtime",
                 "Europe/../UTC", "Europe", "", " UTC"]
DAILY = {"hour": 2, "minute": 0}


@pytest.mark.parametrize("name", NOT_PLACES + NOT_CANONICAL)
def test_the_trigger_refuses_a_zone_that_is_no_canonical_place(name):
    with pytest.raises(TimeConfigError) as refused:
        build_trigger("daily", DAILY, name)
    assert refused.value.field == "timezone"
    assert f"timezone: {name!r} is not an IANA time zone" in str(refused.value)


def test_every_canonical_zone_is_accepted():
    names = zone_names()
    assert {"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Etc/GMT+12"} <= names
    assert not names & set(NOT_PLACES)
    for name in sorted(names):
        build_trigger("daily", DAILY, name)


@pytest.mark.django_db
@pytest.mark.parametrize("name", NOT_PLACES)
def test_admin_import_and_api_refuse_it_and_change_nothing(admin_client, stored, name):
    message = f"timezone: {name!r} is not an IANA time zone of a place"
    response = admin_client.post(reverse("admin:schedules_schedule_add"), {
        "domain_config_id": "cfg-new", "domain": "new.example.com", "profile": "", "enabled": "on",
        "frequency": "daily", "time_config": '{"hour": 2, "minute": 0}', "timezone": name, "scan_settings": "{}"})
    assert message in " ".join(response.context["adminform"].form.errors["timezone"])
    result = import_entries(entries=[entry("tz", schedule={"frequency": "daily", "time": "02:00", "timezone": name})])
    assert result["created"] == 0 and result["rejected"] == [f"tz: {message} (it depends on the host); "
                                                             "give e.g. Europe/Berlin"]
    with pytest.raises(ValidationError) as raised:
        services.create_schedule(domain_config_id="py", domain="py.example.com", frequency="daily", time_config=DAILY,
                                 timezone=name)
    assert message in str(raised.value.message_dict["timezone"])
    with pytest.raises(ValidationError):
        services.update_schedule(schedule_id=stored["a"].pk, timezone=name)
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("name", ["localtime", "Factory", "posix/UTC"])
def test_time_zone_setting_refuses_it_at_start_up(name):
    result = load({"TIME_ZONE": name})
    assert result.returncode != 0
    assert f"TIME_ZONE={name!r} is invalid" in result.stderr and "not an IANA time zone" in result.stderr
