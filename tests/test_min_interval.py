"""MIN_INTERVAL_SECONDS (default 60): an interval schedule shorter than it is
refused in admin, the import and the Python API, naming the field and the
value. Each slot is a history row, so a 1-second interval wrote 86,400 rows a
day per schedule. The rest of the suite lowers it (tests/conftest.py)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from schedules import services
from schedules.importer.apply import import_entries
from schedules.models import Schedule
from schedules.timing.triggers import build_trigger
from tests.api_server import entry
from tests.stored_rows import snapshot
from tests.test_settings import load

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_minimum(settings):
    settings.MIN_INTERVAL_SECONDS = 60
    return settings


def test_the_default_is_60_seconds_and_bad_values_stop_start_up():
    assert load({}, "s.MIN_INTERVAL_SECONDS").stdout.strip() == "60"
    assert load({"MIN_INTERVAL_SECONDS": "5"}, "s.MIN_INTERVAL_SECONDS").stdout.strip() == "5"
    for value, reason in (("abc", "expected an integer"), ("0", "must be at least 1")):
        result = load({"MIN_INTERVAL_SECONDS": value})
        assert result.returncode != 0 and f"MIN_INTERVAL_SECONDS={value!r} is invalid: {reason}" in result.stderr


@pytest.mark.parametrize("config, seconds", [({"seconds": 1}, 1), ({"seconds": 59}, 59), ({"minutes": 0, "seconds": 30}, 30)])
def test_a_shorter_interval_is_refused_everywhere_and_changes_nothing(admin_client, stored, production_minimum, config,
                                                                      seconds):
    message = (f"time_config: {json.dumps(config, sort_keys=True)} is an interval of {seconds} seconds, shorter than "
               "MIN_INTERVAL_SECONDS (60)")
    response = admin_client.post(reverse("admin:schedules_schedule_add"), {
        "domain_config_id": "cfg-new", "domain": "new.example.com", "profile": "", "enabled": "on",
        "frequency": "interval", "time_config": json.dumps(config), "timezone": "UTC", "scan_settings": "{}"})
    assert message in " ".join(response.context["adminform"].form.errors["time_config"])
    result = import_entries(entries=[entry("fast", schedule={"frequency": "interval", "time": config})])
    assert result["created"] == 0 and result["rejected"] == [f"fast: {message}"]
    with pytest.raises(ValidationError) as raised:
        services.create_schedule(domain_config_id="py", domain="py.example.com", frequency="interval",
                                 time_config=config)
    assert message in raised.value.message_dict["time_config"]
    with pytest.raises(ValidationError):
        services.update_schedule(schedule_id=stored["a"].pk, frequency="interval", time_config=config)
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("config", [{"seconds": 60}, {"minutes": 1}, {"hours": 1}, {"minutes": 1, "seconds": 5}])
def test_the_minimum_itself_and_longer_are_accepted(production_minimum, config):
    services.create_schedule(domain_config_id="ok", domain="ok.example.com", frequency="interval", time_config=config)
    assert import_entries(entries=[entry("imp", schedule={"frequency": "interval", "time": config})])["created"] == 1


def test_a_lower_setting_allows_faster_slots(settings):
    settings.MIN_INTERVAL_SECONDS = 1
    services.create_schedule(domain_config_id="fast", domain="fast.example.com", frequency="interval",
                             time_config={"seconds": 1})


def test_a_faster_row_stored_before_still_loads(production_minimum):
    # Stored rows are not judged again when they load: a schedule saved under a
    # lower setting keeps running, and an edit has to raise its interval.
    Schedule.objects.bulk_create([Schedule(domain_config_id="old", domain="old.example.com", frequency="interval",
                                           time_config={"seconds": 1})])
    row = Schedule.objects.get(domain_config_id="old")
    assert build_trigger(row.frequency, row.time_config, row.timezone) is not None
    row.domain = "renamed.example.com"
    with pytest.raises(ValidationError) as raised:
        row.full_clean()
    assert "shorter than MIN_INTERVAL_SECONDS (60)" in str(raised.value)
