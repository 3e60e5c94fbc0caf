"""Spread: a stable offset per schedule inside its window, shown as the real
next_run and upcoming runs, and importable from the API."""

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from schedules.importer.apply import import_entries
from schedules.models import Schedule
from schedules.runtime.specs import load_spec
from schedules.timing.spread import spread_offset
from tests.api_server import entry

UTC = timezone.utc
NOW = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


@given(schedule_id=st.uuids(), minutes=st.integers(min_value=1, max_value=1440))
@hypothesis_settings(max_examples=300)
def test_offsets_are_stable_and_inside_the_window(schedule_id, minutes):
    offset = spread_offset(schedule_id, minutes)
    assert 0 <= offset < minutes * 60
    assert spread_offset(str(schedule_id), minutes) == offset


def test_the_offset_is_the_same_in_every_process():
    """A hash of the id's bytes, never Python's per-process salted hash()."""
    import subprocess
    import sys

    ids = [uuid.uuid4() for _ in range(5)]
    code = ("import sys, uuid; from schedules.timing.spread import spread_offset; "
            "print([spread_offset(uuid.UUID(i), 60) for i in sys.argv[1:]])")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, *map(str, ids)], capture_output=True, text=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}, timeout=30, check=True).stdout
        assert out.strip() == str([spread_offset(i, 60) for i in ids])


def test_a_herd_of_ten_thousand_spreads_evenly_over_an_hour():
    offsets = [spread_offset(uuid.uuid4(), 60) for _ in range(10_000)]
    per_ten_minutes = Counter(offset // 600 for offset in offsets)
    assert sorted(per_ten_minutes) == [0, 1, 2, 3, 4, 5]
    assert all(1400 < n < 1940 for n in per_ten_minutes.values()), per_ten_minutes


def test_no_window_means_no_offset(settings):
    settings.DEFAULT_SPREAD_SECONDS = 0
    assert spread_offset(uuid.uuid4(), None) == 0
    settings.DEFAULT_SPREAD_SECONDS = 90  # read once, and again after an override
    offsets = {spread_offset(uuid.uuid4(), None) for _ in range(200)}
    assert all(0 <= offset < 90 for offset in offsets) and len(offsets) > 1
    assert spread_offset(uuid.uuid4(), 0) == 0, "a schedule's own 0 overrides the default"


@pytest.mark.django_db
def test_next_run_and_upcoming_runs_show_the_real_times(make_schedule):
    schedule = make_schedule(frequency="daily", time_config={"hour": 2, "minute": 0}, spread_minutes=60)
    offset = timedelta(seconds=schedule.spread_offset)
    assert offset > timedelta(0)
    first = datetime(2026, 5, 1, 2, 0, tzinfo=UTC) + offset
    assert schedule.upcoming_runs(count=3, now=NOW) == [first + timedelta(days=n) for n in range(3)]
    spec = load_spec(schedule.schedule_id)
    assert spec.trigger.get_next_fire_time(None, NOW) == first
    assert spec.trigger.get_next_fire_time(first, first + timedelta(seconds=1)) == first + timedelta(days=1)
    schedule.refresh_from_db()
    assert schedule.next_run - offset == schedule.next_run.replace(hour=2, minute=0, second=0, microsecond=0)


@pytest.mark.django_db
def test_a_new_spread_reschedules_the_loaded_job(make_schedule):
    from schedules.runtime.specs import change_for

    schedule = make_schedule()
    before = load_spec(schedule.schedule_id)
    schedule.spread_minutes = 30
    schedule.save()
    assert change_for(before, load_spec(schedule.schedule_id)).action == "reschedule"


@pytest.mark.django_db
def test_a_spread_out_of_range_is_refused_naming_field_and_value():
    schedule = Schedule(domain_config_id="s", domain="example.com", frequency="daily",
                        time_config={"hour": 2, "minute": 0}, spread_minutes=5000)
    with pytest.raises(ValidationError) as error:
        schedule.full_clean()
    assert error.value.message_dict["spread_minutes"] == ["spread_minutes: 5000 is not between 0 and 1440"]


@pytest.mark.django_db
def test_the_api_import_sets_the_spread():
    schedule = {"frequency": "daily", "time": {"hour": 2, "minute": 0}, "spread_minutes": 45}
    result = import_entries(entries=[entry("spread-1", schedule=schedule), entry("plain-1")])
    assert result["created"] == 2, result
    spread = Schedule.objects.get(domain_config_id="spread-1")
    assert spread.spread_minutes == 45
    assert spread.next_run == spread.compute_next_run(now=spread.updated_at)
    assert Schedule.objects.get(domain_config_id="plain-1").spread_minutes is None
    bad = import_entries(entries=[entry("spread-2", schedule={**schedule, "spread_minutes": -5})])
    assert bad["created"] == 0 and "spread-2: spread_minutes" in bad["rejected"][0], bad


@pytest.mark.django_db
def test_a_spread_across_a_dst_change_moves_by_real_time(make_schedule):
    """01:30 Berlin on the spring-forward night + 60 min is 03:30 local (02:30
    does not exist): the offset is real time, added in UTC."""
    from zoneinfo import ZoneInfo

    schedule = make_schedule(frequency="daily", time_config={"hour": 1, "minute": 30}, timezone="Europe/Berlin",
                             spread_minutes=120)
    offset = timedelta(seconds=schedule.spread_offset)
    night = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # the day before the switch (29 March)
    runs = schedule.upcoming_runs(count=2, now=night)
    berlin = ZoneInfo("Europe/Berlin")
    slots = [datetime(2026, 3, 29, 1, 30, tzinfo=berlin), datetime(2026, 3, 30, 1, 30, tzinfo=berlin)]
    assert runs == [slot.astimezone(UTC) + offset for slot in slots]
