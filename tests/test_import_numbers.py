"""One number rule for every numeric field of the import: a JSON integer.

Not true/false (a bool is an int in Python), not a string ("60"), not a float
(1.5, nor 60.0). spread_minutes took "60", true and 1.5 (the model field
coerced them to 60, 1 and 1) while maxPages refused "50". Every rejection
names the field and the value, and stores nothing."""

import itertools

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from schedules.importer.apply import import_entries
from schedules.models import Schedule
from schedules.timing.triggers import MAX_INTERVAL_SECONDS
from schedules.validators import is_integer
from tests.api_server import entry

pytestmark = pytest.mark.django_db
PG_INTEGER = 2**31 - 1


def _schedule(frequency, time, **extra):
    return lambda dcid, value: entry(dcid, schedule={"frequency": frequency, "time": time(value), **extra})


# field -> (lowest, highest accepted, entry with the value there, where the stored row keeps it)
FIELDS = {
    "spread_minutes": (0, 24 * 60, lambda dcid, v: entry(dcid, schedule={"frequency": "daily", "time": "02:00",
                                                                          "spread_minutes": v}),
                       lambda row: row.spread_minutes),
    "hour": (0, 23, _schedule("daily", lambda v: {"hour": v, "minute": 0}), lambda row: row.time_config["hour"]),
    "minute": (0, 59, _schedule("hourly", lambda v: {"minute": v}), lambda row: row.time_config["minute"]),
    "day": (1, 31, _schedule("monthly", lambda v: {"day": v, "hour": 2, "minute": 0}), lambda row: row.time_config["day"]),
    "seconds": (1, MAX_INTERVAL_SECONDS, _schedule("interval", lambda v: {"seconds": v}),
                lambda row: row.time_config["seconds"]),
    "minutes": (1, MAX_INTERVAL_SECONDS // 60, _schedule("interval", lambda v: {"minutes": v}),
                lambda row: row.time_config["minutes"]),
    "hours": (1, MAX_INTERVAL_SECONDS // 3600, _schedule("interval", lambda v: {"hours": v}),
              lambda row: row.time_config["hours"]),
    "maxPages": (0, PG_INTEGER, lambda dcid, v: entry(dcid, maxPages=v), lambda row: row.scan_settings["maxPages"]),
    "scanDepth": (0, PG_INTEGER, lambda dcid, v: entry(dcid, scanDepth=v), lambda row: row.scan_settings["scanDepth"]),
    "maxRetries": (0, PG_INTEGER, lambda dcid, v: entry(dcid, maxRetries=v),
                   lambda row: row.scan_settings["maxRetries"]),
}

small = st.integers(min_value=-100, max_value=2000)
values = st.one_of(
    small,
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    small.map(str),  # "60"
    st.sampled_from(["", " 5", "5 ", "0x10", "1e2", "sixty"]),
    small.map(float),  # 60.0
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.just([5]), st.just({"value": 5}),
)
_ids = itertools.count()


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), value=values)
def test_every_numeric_field_takes_integers_only(field, value):
    low, high, make, kept = FIELDS[field]
    dcid = f"n-{next(_ids)}"
    before = Schedule.objects.count()
    result = import_entries(entries=[make(dcid, value)])
    accepted = is_integer(value) and low <= value <= high
    if accepted:
        assert result["rejected"] == [] and result["created"] == 1, (field, value, result["rejected"])
        stored = kept(Schedule.objects.get(domain_config_id=dcid))
        assert type(stored) is int and stored == value
    else:
        assert result["created"] == 0 and len(result["rejected"]) == 1, (field, value, result)
        reason = result["rejected"][0]
        assert reason.startswith(f"{dcid}") and field in reason, reason
        shown = repr(value)
        assert shown in reason or shown[:20] in reason, reason
        assert Schedule.objects.count() == before and not Schedule.objects.filter(domain_config_id=dcid).exists()


@pytest.mark.parametrize("value", ["60", True, 1.5, 60.0])
def test_spread_minutes_as_text_bool_or_float_is_refused_like_max_pages(value):
    result = import_entries(entries=[entry("s", schedule={"frequency": "daily", "time": "02:00", "spread_minutes": value}),
                                     entry("m", maxPages=value)])
    assert result["rejected"] == [f"s: spread_minutes: {value!r} is not an integer",
                                  f"m: maxPages: {value!r} is not a PositiveIntegerField value"]
    assert not Schedule.objects.exists()
