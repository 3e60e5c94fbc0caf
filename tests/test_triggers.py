import itertools
from datetime import datetime, timedelta, timezone

import pytest

from schedules.timing.triggers import (
    INTERVAL_EPOCH,
    TimeConfigError,
    build_trigger,
    describe,
    next_fire_times,
    trigger_of,
)

UTC = timezone.utc
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    "frequency, config, tz, expected",
    [
        ("hourly", {"minute": 15}, "UTC", ["2026-03-04T11:15:00+00:00", "2026-03-04T12:15:00+00:00"]),
        ("daily", {"hour": 2, "minute": 0}, "UTC", ["2026-03-05T02:00:00+00:00", "2026-03-06T02:00:00+00:00"]),
        (
            "daily",
            {"hour": 2, "minute": 0},
            "Europe/Berlin",
            ["2026-03-05T02:00:00+01:00", "2026-03-06T02:00:00+01:00"],
        ),
        (
            "weekly",
            {"day": "monday", "hour": 9, "minute": 30},
            "UTC",
            ["2026-03-09T09:30:00+00:00", "2026-03-16T09:30:00+00:00"],
        ),
        (
            "weekly",
            {"days": ["wednesday", "Friday"], "hour": 11, "minute": 0},
            "UTC",
            ["2026-03-04T11:00:00+00:00", "2026-03-06T11:00:00+00:00"],
        ),
        ("monthly", {"day": 1, "hour": 0, "minute": 0}, "UTC", ["2026-04-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00"]),
        (
            "monthly",
            {"day": "last", "hour": 23, "minute": 0},
            "UTC",
            ["2026-03-31T23:00:00+00:00", "2026-04-30T23:00:00+00:00"],
        ),
        (
            "monthly",
            {"day": 31, "hour": 0, "minute": 0},
            "UTC",
            ["2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00"],
        ),
        ("cron", {"expression": "*/20 * * * 1-5"}, "UTC", ["2026-03-04T10:40:00+00:00", "2026-03-04T11:00:00+00:00"]),
        ("interval", {"minutes": 45}, "UTC", ["2026-03-04T11:15:00+00:00", "2026-03-04T12:00:00+00:00"]),
        ("once", {"at": "2026-03-05T08:00:00"}, "Europe/Berlin", ["2026-03-05T08:00:00+01:00"]),
    ],
)
def test_next_fire_times(frequency, config, tz, expected):
    trigger = build_trigger(frequency, config, tz)
    times = next_fire_times(trigger, count=2, now=NOW)
    assert [t.isoformat() for t in times] == expected


def test_interval_slots_count_from_the_fixed_epoch():
    times = next_fire_times(build_trigger("interval", {"seconds": 7}, "UTC"), count=3, now=NOW)
    assert times[0] - NOW <= timedelta(seconds=7)
    assert all((t - INTERVAL_EPOCH).total_seconds() % 7 == 0 for t in times)


def test_interval_slots_are_the_same_whenever_the_trigger_is_built():
    # Instances load jobs at different moments; they must agree on the slots.
    a = next_fire_times(build_trigger("interval", {"seconds": 2}, "UTC"), count=3, now=NOW)
    b = next_fire_times(build_trigger("interval", {"seconds": 2}, "UTC"), count=3, now=NOW.replace(microsecond=999))
    assert a == b
    assert all(t.second % 2 == 0 and t.microsecond == 0 for t in a)


def test_once_in_the_past_has_no_next_run():
    trigger = build_trigger("once", {"at": "2020-01-01T00:00:00+00:00"}, "UTC")
    assert next_fire_times(trigger, count=3, now=NOW) == []


def test_daily_across_spring_forward_keeps_local_wall_time():
    # Europe/Berlin moves from +01:00 to +02:00 on 2026-03-29.
    trigger = build_trigger("daily", {"hour": 3, "minute": 30}, "Europe/Berlin")
    now = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    times = next_fire_times(trigger, count=3, now=now)
    assert [t.isoformat() for t in times] == [
        "2026-03-28T03:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T03:30:00+02:00",
    ]
    assert [t.astimezone(UTC).hour for t in times] == [2, 1, 1]


def test_daily_in_the_skipped_hour_on_spring_forward_day_runs_once_an_hour_late():
    # 02:30 does not exist in Berlin on 2026-03-29: that day's run is at 03:30 CEST.
    trigger = build_trigger("daily", {"hour": 2, "minute": 30}, "Europe/Berlin")
    times = next_fire_times(trigger, count=3, now=datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2026-03-29T01:30:00+00:00",
        "2026-03-30T00:30:00+00:00",
        "2026-03-31T00:30:00+00:00",
    ]


def test_daily_across_fall_back_fires_once():
    # 02:30 happens twice in Berlin on 2026-10-25; the schedule runs once.
    trigger = build_trigger("daily", {"hour": 2, "minute": 30}, "Europe/Berlin")
    times = next_fire_times(trigger, count=2, now=datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert [t.astimezone(UTC).isoformat() for t in times] == ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]


def test_hourly_runs_every_real_hour_across_fall_back():
    trigger = build_trigger("hourly", {"minute": 30}, "Europe/Berlin")
    times = next_fire_times(trigger, count=3, now=datetime(2026, 10, 24, 23, 45, tzinfo=UTC))
    assert [t.astimezone(UTC).strftime("%H:%M") for t in times] == ["00:30", "01:30", "02:30"]


def test_interval_is_absolute_across_dst():
    trigger = build_trigger("interval", {"hours": 1}, "Europe/Berlin")
    times = next_fire_times(trigger, count=3, now=datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [3600, 3600]


@pytest.mark.parametrize(
    "frequency, config, tz, field, fragment",
    [
        ("yearly", {}, "UTC", "frequency", "'yearly'"),
        ("daily", [], "UTC", "time_config", "is not an object"),
        ("daily", {"hour": 25, "minute": 0}, "UTC", "time_config.hour", "25 is out of range 0-23"),
        ("daily", {"hour": 2, "minute": 60}, "UTC", "time_config.minute", "60 is out of range 0-59"),
        ("daily", {"hour": "2", "minute": 0}, "UTC", "time_config.hour", "'2' is not an integer"),
        ("daily", {"hour": True, "minute": 0}, "UTC", "time_config.hour", "True is not an integer"),
        ("daily", {"minute": 0}, "UTC", "time_config.hour", "is required"),
        ("daily", {"hour": 1, "minute": 0, "second": 3}, "UTC", "time_config.second", "is not a setting"),
        ("hourly", {"minute": -1}, "UTC", "time_config.minute", "-1 is out of range"),
        ("weekly", {"day": "funday", "hour": 1, "minute": 0}, "UTC", "time_config.day", "'funday' is not a weekday"),
        ("weekly", {"days": [], "hour": 1, "minute": 0}, "UTC", "time_config.days", "at least one"),
        ("weekly", {"hour": 1, "minute": 0}, "UTC", "time_config.day", "is required"),
        ("monthly", {"day": 32, "hour": 1, "minute": 0}, "UTC", "time_config.day", "32 is not a day of month"),
        ("monthly", {"day": "first", "hour": 1, "minute": 0}, "UTC", "time_config.day", "'first'"),
        ("cron", {"expression": "0 0 * * * *"}, "UTC", "time_config.expression", "has 6 fields"),
        ("cron", {"expression": "61 * * * *"}, "UTC", "time_config.expression", "'61 * * * *'"),
        ("cron", {"expression": ""}, "UTC", "time_config.expression", "is not a crontab"),
        ("interval", {}, "UTC", "time_config", "needs one of"),
        ("interval", {"seconds": 0}, "UTC", "time_config", "at least 1 second"),
        ("interval", {"minutes": "5"}, "UTC", "time_config.minutes", "'5' is not a non-negative integer"),
        ("once", {"at": "tomorrow"}, "UTC", "time_config.at", "'tomorrow' is not an ISO-8601"),
        ("daily", {"hour": 1, "minute": 0}, "Mars/Olympus", "timezone", "'Mars/Olympus' is not an IANA"),
    ],
)
def test_invalid_configs_name_the_field_and_value(frequency, config, tz, field, fragment):
    with pytest.raises(TimeConfigError) as excinfo:
        build_trigger(frequency, config, tz)
    assert excinfo.value.field == field
    assert fragment in str(excinfo.value)


def test_trigger_of_reuses_equal_triggers():
    a = trigger_of(frequency="daily", time_config={"hour": 2, "minute": 0}, timezone="UTC")
    b = trigger_of(frequency="daily", time_config={"minute": 0, "hour": 2}, timezone="UTC")
    assert a is b
    assert trigger_of(frequency="daily", time_config={"hour": 3, "minute": 0}, timezone="UTC") is not a


@pytest.mark.parametrize(
    "frequency, config, words",
    [
        ("daily", {"hour": 2, "minute": 0}, "Daily at 02:00 Europe/Berlin"),
        ("weekly", {"days": ["monday", "friday"], "hour": 9, "minute": 5}, "Weekly on Monday, Friday at 09:05 Europe/Berlin"),
        ("monthly", {"day": "last", "hour": 23, "minute": 30}, "Monthly on the last day at 23:30 Europe/Berlin"),
        ("interval", {"minutes": 30}, "Every 30 minutes"),
        ("hourly", {"minute": 5}, "Hourly at minute 5"),
    ],
)
def test_describe(frequency, config, words):
    assert describe(frequency, config, "Europe/Berlin") == words
