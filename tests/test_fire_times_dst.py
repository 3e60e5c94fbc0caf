"""Each case of issue 11's "Why" pinned to its correct fire times (``now`` is an input).

Times are written as local ISO strings with their offset, so a wrong day, a
wrong occurrence of a repeated hour and a wrong gap shift all show.
"""

import pickle
from datetime import datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from schedules.importer.apply import import_entries
from schedules.models import Schedule
from schedules.runtime.specs import iter_specs
from schedules.timing.triggers import TimeConfigError, build_trigger, next_fire_times, skipped_months_warning

UTC = timezone.utc


def _fires(frequency, config, tz, now, count):
    return [t.isoformat() for t in next_fire_times(build_trigger(frequency, config, tz), count=count, now=now)]


def _at(text):
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "frequency, config, tz, now, expected",
    [
        # 1. The day after spring-forward is not skipped (00:00-00:59).
        ("daily", {"hour": 0, "minute": 30}, "Europe/Berlin", "2026-03-27T12:00Z",
         ["2026-03-28T00:30:00+01:00", "2026-03-29T00:30:00+01:00", "2026-03-30T00:30:00+02:00",
          "2026-03-31T00:30:00+02:00"]),
        ("weekly", {"day": "monday", "hour": 0, "minute": 0}, "Europe/Berlin", "2026-03-27T12:00Z",
         ["2026-03-30T00:00:00+02:00", "2026-04-06T00:00:00+02:00"]),
        ("monthly", {"day": 1, "hour": 0, "minute": 30}, "Europe/Berlin", "2026-03-27T12:00Z",
         ["2026-04-01T00:30:00+02:00", "2026-05-01T00:30:00+02:00"]),
        # ... also on a fresh start the day before
        ("monthly", {"day": 1, "hour": 0, "minute": 30}, "Europe/Berlin", "2026-03-31T12:00Z",
         ["2026-04-01T00:30:00+02:00"]),
        ("cron", {"expression": "30 0 * * *"}, "Europe/Berlin", "2026-03-28T12:00Z",
         ["2026-03-29T00:30:00+01:00", "2026-03-30T00:30:00+02:00"]),
        ("cron", {"expression": "0 0 1 * *"}, "Europe/Berlin", "2026-03-27T12:00Z",
         ["2026-04-01T00:00:00+02:00", "2026-05-01T00:00:00+02:00"]),
        ("daily", {"hour": 0, "minute": 30}, "America/New_York", "2026-03-07T12:00Z",
         ["2026-03-08T00:30:00-05:00", "2026-03-09T00:30:00-04:00"]),
        ("daily", {"hour": 0, "minute": 30}, "Pacific/Chatham", "2026-09-26T00:00Z",
         ["2026-09-27T00:30:00+12:45", "2026-09-28T00:30:00+13:45"]),
        ("daily", {"hour": 0, "minute": 15}, "Australia/Lord_Howe", "2026-10-03T00:00Z",
         ["2026-10-04T00:15:00+10:30", "2026-10-05T00:15:00+11:00"]),
        # 2. Cron weekday numbers: 0 and 7 are Sunday, 1-5 Monday to Friday.
        ("cron", {"expression": "0 9 * * 1-5"}, "UTC", "2026-03-06T12:00Z",  # a Friday afternoon
         ["2026-03-09T09:00:00+00:00", "2026-03-10T09:00:00+00:00", "2026-03-11T09:00:00+00:00",
          "2026-03-12T09:00:00+00:00", "2026-03-13T09:00:00+00:00", "2026-03-16T09:00:00+00:00"]),
        ("cron", {"expression": "0 0 * * 0"}, "UTC", "2026-03-04T12:00Z",
         ["2026-03-08T00:00:00+00:00", "2026-03-15T00:00:00+00:00"]),
        ("cron", {"expression": "0 0 * * 7"}, "UTC", "2026-03-04T12:00Z",
         ["2026-03-08T00:00:00+00:00", "2026-03-15T00:00:00+00:00"]),
        ("cron", {"expression": "0 0 * * sun"}, "UTC", "2026-03-04T12:00Z",
         ["2026-03-08T00:00:00+00:00", "2026-03-15T00:00:00+00:00"]),
        # 3. Day of month OR day of week when both are restricted: 1st, 15th and Mondays.
        ("cron", {"expression": "0 0 1,15 * 1"}, "UTC", "2026-02-28T12:00Z",
         ["2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00", "2026-03-09T00:00:00+00:00",
          "2026-03-15T00:00:00+00:00", "2026-03-16T00:00:00+00:00", "2026-03-23T00:00:00+00:00"]),
        # Macros.
        ("cron", {"expression": "@weekly"}, "UTC", "2026-03-04T12:00Z", ["2026-03-08T00:00:00+00:00"]),
        ("cron", {"expression": "@monthly"}, "UTC", "2026-03-04T12:00Z", ["2026-04-01T00:00:00+00:00"]),
        ("cron", {"expression": "@yearly"}, "UTC", "2026-03-04T12:00Z", ["2027-01-01T00:00:00+00:00"]),
        ("cron", {"expression": "@daily"}, "UTC", "2026-03-04T12:00Z", ["2026-03-05T00:00:00+00:00"]),
        ("cron", {"expression": "@hourly"}, "UTC", "2026-03-04T12:00Z", ["2026-03-04T13:00:00+00:00"]),
        # 4. Hourly in Chatham keeps both 02:45s of the repeated hour 02:45-03:44.
        ("hourly", {"minute": 45}, "Pacific/Chatham", "2026-04-04T11:50Z",
         ["2026-04-05T01:45:00+13:45", "2026-04-05T02:45:00+13:45", "2026-04-05T02:45:00+12:45",
          "2026-04-05T03:45:00+12:45"]),
        ("hourly", {"minute": 45}, "Pacific/Chatham", "2026-04-04T12:50Z",
         ["2026-04-05T02:45:00+13:45", "2026-04-05T02:45:00+12:45", "2026-04-05T03:45:00+12:45"]),
        # Fixed-time cron and daily agree on fall-back night: once, at the first 02:30.
        ("cron", {"expression": "30 2 * * *"}, "Europe/Berlin", "2026-10-24T12:00Z",
         ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
        ("daily", {"hour": 2, "minute": 30}, "Europe/Berlin", "2026-10-24T12:00Z",
         ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
        # A wall time in the gap moves forward by the gap's length: 1 h in Berlin, 30 min in Lord Howe.
        ("daily", {"hour": 2, "minute": 30}, "Europe/Berlin", "2026-03-28T12:00Z",
         ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]),
        ("daily", {"hour": 2, "minute": 15}, "Australia/Lord_Howe", "2026-10-03T00:00Z",
         ["2026-10-04T02:45:00+11:00", "2026-10-05T02:15:00+11:00"]),
        ("once", {"at": "2026-03-29T02:30:00"}, "Europe/Berlin", "2026-03-28T12:00Z",
         ["2026-03-29T03:30:00+02:00"]),
        # Monthly on the 31st skips the months without one (as cron does); "last" does not.
        ("monthly", {"day": 31, "hour": 0, "minute": 0}, "UTC", "2026-01-31T12:00Z",
         ["2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00"]),
        ("monthly", {"day": "last", "hour": 0, "minute": 0}, "UTC", "2026-01-31T12:00Z",
         ["2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00"]),
    ],
)
def test_fire_times(frequency, config, tz, now, expected):
    assert _fires(frequency, config, tz, _at(now), len(expected)) == expected


def test_sub_hourly_in_chatham_keeps_all_four_slots_of_the_repeated_hour():
    # 03:45 +13:45 falls back to 02:45 +12:45 at 14:00Z: a 15-minute step in real time throughout.
    times = next_fire_times(build_trigger("cron", {"expression": "*/15 * * * *"}, "Pacific/Chatham"),
                            count=12, now=_at("2026-04-04T12:50Z"))
    assert [t.astimezone(UTC) for t in times] == [_at("2026-04-04T13:00Z") + timedelta(minutes=15 * i) for i in range(12)]
    assert [t.strftime("%H:%M%z") for t in times[4:9]] == ["02:45+1245", "03:00+1245", "03:15+1245", "03:30+1245",
                                                          "03:45+1245"]


@pytest.mark.parametrize(
    "now, expected",
    [
        # 02:01 CET, after the first 02:30 of fall-back night: no second 02:30.
        ("2026-10-25T01:01Z", ["2026-10-26T02:30:00+01:00"]),
        # 03:01 CEST on spring-forward day: the 02:30 moved to 03:30 is still ahead.
        ("2026-03-29T01:01Z", ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]),
    ],
)
def test_next_run_from_scratch_near_a_change(now, expected):
    trigger = build_trigger("daily", {"hour": 2, "minute": 30}, "Europe/Berlin")
    assert _fires("daily", {"hour": 2, "minute": 30}, "Europe/Berlin", _at(now), len(expected)) == expected
    # What the runtime does at start-up (load_all) and what a running job does after its previous fire.
    assert trigger.get_next_fire_time(None, _at(now)).isoformat() == expected[0]


def test_a_restart_at_any_minute_of_a_change_night_neither_adds_nor_loses_a_run():
    trigger = build_trigger("daily", {"hour": 2, "minute": 30}, "Europe/Berlin")
    for night in ("2026-03-28T22:00Z", "2026-10-24T22:00Z"):
        start = _at(night)
        running = next_fire_times(trigger, count=3, now=start)
        for minute in range(0, 6 * 60, 7):
            now = start + timedelta(minutes=minute)
            assert trigger.get_next_fire_time(None, now) == min(t for t in running if t >= now)


def test_a_trigger_holds_no_state_and_survives_pickling():
    # One trigger object serves every schedule with the same settings, in any order of calls.
    trigger = build_trigger("hourly", {"minute": 45}, "Pacific/Chatham")
    later = trigger.get_next_fire_time(None, _at("2026-04-04T14:30Z"))
    earlier = trigger.get_next_fire_time(None, _at("2026-04-04T12:30Z"))
    assert (earlier.isoformat(), later.isoformat()) == ("2026-04-05T02:45:00+13:45", "2026-04-05T03:45:00+12:45")
    assert trigger.get_next_fire_time(None, _at("2026-04-04T14:30Z")) == later
    copy = pickle.loads(pickle.dumps(trigger))
    now = _at("2026-04-04T12:30Z")
    assert next_fire_times(copy, count=4, now=now) == next_fire_times(trigger, count=4, now=now)


@pytest.mark.parametrize(
    "expression, fragment",
    [
        ("0 0 31 2 *", "'0 0 31 2 *' matches no date"),
        ("0 0 30 2 *", "'0 0 30 2 *' matches no date"),
        ("0 0 31 4,6,9,11 *", "matches no date"),
        ("0 0 * * 8", "'0 0 * * 8'"),
        ("0 0 L * *", "'L' is not a classic cron day of month field"),
        ("0 0 * * 1#2", "'1#2' is not a classic cron day of week field"),
        ("@reboot", "'@reboot' is not a cron macro"),
    ],
)
def test_cron_that_is_not_classic_or_never_fires_is_rejected(expression, fragment):
    with pytest.raises(TimeConfigError) as excinfo:
        build_trigger("cron", {"expression": expression}, "UTC")
    assert excinfo.value.field == "time_config.expression"
    assert fragment in str(excinfo.value)


@pytest.mark.parametrize("day, months", [(29, "February"), (30, "February"), (31, "April, June")])
def test_monthly_on_a_day_some_months_lack_warns_and_suggests_last(day, months):
    warning = skipped_months_warning("monthly", {"day": day, "hour": 0, "minute": 0})
    assert f"time_config.day: {day}" in warning and months in warning and '"last"' in warning
    assert skipped_months_warning("monthly", {"day": 28, "hour": 0, "minute": 0}) is None
    assert skipped_months_warning("monthly", {"day": "last", "hour": 0, "minute": 0}) is None


@pytest.mark.django_db
def test_admin_warns_when_saving_monthly_on_the_31st(admin_client, make_schedule):
    schedule = make_schedule()
    url = reverse("admin:schedules_schedule_change", args=[schedule.pk])
    form = {"domain_config_id": schedule.domain_config_id, "domain": schedule.domain, "profile": "", "enabled": "on",
            "frequency": "monthly", "time_config": '{"day": 31, "hour": 1, "minute": 0}', "timezone": "UTC",
            "scan_settings": "{}"}
    response = admin_client.post(url, form, follow=True)
    assert response.status_code == 200
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("time_config.day: 31 does not occur in February, April")
    schedule.refresh_from_db()
    assert schedule.time_config == {"day": 31, "hour": 1, "minute": 0}


PAST = {"at": "2020-01-01T00:00:00"}


@pytest.mark.django_db
def test_once_in_the_past_is_rejected_by_the_model_and_the_import(make_schedule):
    with pytest.raises(ValidationError) as excinfo:
        make_schedule(frequency="once", time_config=PAST)
    assert "time_config.at: '2020-01-01T00:00:00' is in the past" in str(excinfo.value)
    result = import_entries(entries=[
        {"domain_config_id": "past", "data": {"domain": "a.example.com",
                                              "schedule": {"frequency": "once", "time": PAST}}},
        {"domain_config_id": "future", "data": {"domain": "b.example.com",
                                                "schedule": {"frequency": "once", "time": {"at": "2099-01-01T00:00:00"}}}},
    ])
    assert result["created"] == 1
    assert ["past" in r and "is in the past" in r for r in result["rejected"]] == [True]
    assert list(Schedule.objects.values_list("domain_config_id", flat=True)) == ["future"]


@pytest.mark.django_db
def test_a_stored_once_in_the_past_still_loads_and_can_be_edited(make_schedule):
    schedule = make_schedule(frequency="once", time_config={"at": "2099-01-01T00:00:00"})
    Schedule.objects.filter(pk=schedule.pk).update(time_config=PAST)  # stored before the check existed
    assert [spec.schedule_id for spec in iter_specs()] == [schedule.pk]
    schedule.refresh_from_db()
    assert schedule.compute_next_run() is None
    schedule.domain = "renamed.example.com"  # an unrelated edit is allowed
    schedule.full_clean()
    schedule.time_config = {"at": "2021-01-01T00:00:00"}  # a new past time is not
    with pytest.raises(ValidationError, match="is in the past"):
        schedule.full_clean()
