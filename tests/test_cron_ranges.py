"""Cron weekday 7 in ranges and reversed ranges, as classic (Vixie) cron reads them.

``0 0 * * 7-7`` ran every day (croniter reads it as ``*``) and ``1-0`` every
minute (croniter wraps a reversed range around). Now 7 is Sunday in ranges
too, and a reversed range is refused with a message. The random cases are in
tests/test_fire_times_property.py, against croniter.
"""

from datetime import datetime, timezone

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from schedules import services
from schedules.importer.apply import import_entries
from schedules.timing.triggers import TimeConfigError, build_trigger, next_fire_times
from tests.api_server import entry
from tests.stored_rows import snapshot

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def _weekdays(expression: str, count: int = 7) -> list[str]:
    trigger = build_trigger("cron", {"expression": expression}, "UTC")
    return [t.strftime("%a") for t in next_fire_times(trigger, count=count, now=NOW)]


@pytest.mark.parametrize("expression, days", [
    ("0 0 * * 7-7", ["Sun"] * 7),
    ("0 0 * * 7", ["Sun"] * 7),
    ("0 0 * * 5-7", ["Fri", "Sat", "Sun"] * 2 + ["Fri"]),
    ("0 0 * * fri-7", ["Fri", "Sat", "Sun"] * 2 + ["Fri"]),
    ("0 0 * * 3-7/2", ["Wed", "Fri", "Sun"] * 2 + ["Wed"]),
    ("0 0 * * 7/2", ["Sun"] * 7),
    ("0 0 * * 6-7,1", ["Sat", "Sun", "Mon"] * 2 + ["Sat"]),
    ("0 0 * * 0-7", ["Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"]),
])
def test_weekday_7_is_sunday_in_ranges_too(expression, days):
    assert _weekdays(expression) == days


def test_a_weekday_range_to_7_with_a_day_of_month_is_either_one_as_in_classic_cron():
    # Classic cron: the weekday field is restricted (not "*"), so the 1st OR any weekday matches: every day.
    trigger = build_trigger("cron", {"expression": "0 0 1 * 0-7"}, "UTC")
    assert len({t.date() for t in next_fire_times(trigger, count=10, now=NOW)}) == 10


@pytest.mark.parametrize("expression, item, field", [
    ("1-0 * * * *", "1-0", "minute"),
    ("0 23-1 * * *", "23-1", "hour"),
    ("0 0 20-10 * *", "20-10", "day of month"),
    ("0 0 * nov-feb *", "nov-feb", "month"),
    ("0 0 * * 6-0", "6-0", "day of week"),
    ("0 0 * * fri-mon", "fri-mon", "day of week"),
    ("0 0 * * 7-1", "7-1", "day of week"),
])
def test_a_reversed_range_is_refused_with_a_message(expression, item, field):
    with pytest.raises(TimeConfigError) as refused:
        build_trigger("cron", {"expression": expression}, "UTC")
    assert refused.value.field == "time_config.expression"
    assert f"{expression!r}: {item!r} in the {field} field is a reversed range" in str(refused.value)
    assert "write upward ranges" in str(refused.value)


@pytest.mark.django_db
def test_admin_import_and_api_refuse_a_reversed_range_and_change_nothing(admin_client, stored):
    message = "time_config.expression: '1-0 * * * *': '1-0' in the minute field is a reversed range"
    response = admin_client.post(reverse("admin:schedules_schedule_add"), {
        "domain_config_id": "cfg-new", "domain": "new.example.com", "profile": "", "enabled": "on",
        "frequency": "cron", "time_config": '{"expression": "1-0 * * * *"}', "timezone": "UTC", "scan_settings": "{}"})
    assert message in " ".join(response.context["adminform"].form.errors["time_config"])
    result = import_entries(entries=[entry("rev", schedule={"frequency": "cron", "time": {"expression": "1-0 * * * *"}})])
    assert result["created"] == 0 and message in result["rejected"][0] and result["rejected"][0].startswith("rev: ")
    with pytest.raises(ValidationError) as raised:
        services.update_schedule(schedule_id=stored["a"].pk, frequency="cron", time_config={"expression": "1-0 * * * *"})
    assert message in str(raised.value)
    assert snapshot() == stored["snapshot"]
