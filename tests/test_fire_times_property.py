"""Fire times against an independent reference, around every DST change of 2026-2028.

The reference never calls the project's trigger code:

- the calendar is croniter's, walked on *naive* wall times (classic cron: 0
  and 7 are Sunday, day-of-month OR day-of-week). Where croniter is not
  classic, the expression is spelled out for it here first (``classic``): a
  weekday range ending at 7 (croniter reads ``7-7`` as every day). Reversed
  ranges (``1-0``; croniter wraps them around) must be refused;
- each wall time becomes instants by the README's rules, worked out here from
  first principles: the instants whose local time reads that wall time are
  found by trying every offset the zone uses and keeping those that agree
  with zoneinfo's UTC->local conversion. None: the wall time is in a gap and
  moves forward by the gap's length. Two: it is repeated; fixed times of day
  take the first, hourly and sub-hourly both.

The project's times must equal the reference exactly. They are also compared
with croniter's own time-zone-aware answers; every difference must be one of
the documented rules, and the test checks which one (``_explain``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.timing.triggers import TimeConfigError, build_trigger, next_fire_times

UTC = timezone.utc
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata",
         "America/Sao_Paulo")
SPAN = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC))
NEAR = timedelta(hours=3)
COUNT = 10
US = timedelta(microseconds=1)
EXAMPLES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# --- the zone's changes, found by scanning zoneinfo's UTC->local offsets ---------------------------
@lru_cache(maxsize=None)
def transitions(zone: str) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """(instant, offset before, offset after) of every change in SPAN."""
    tz = ZoneInfo(zone)
    found = []
    t = SPAN[0]
    while t < SPAN[1]:
        nxt = t + timedelta(hours=6)
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            low, high = t, nxt
            while high - low > timedelta(seconds=30):
                mid = low + (high - low) / 2
                if mid.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = mid
                else:
                    high = mid
            change = low.replace(second=0, microsecond=0) + timedelta(minutes=1)  # changes fall on whole minutes
            found.append((change, low.astimezone(tz).utcoffset(), high.astimezone(tz).utcoffset()))
        t = nxt
    return tuple(found)


@lru_cache(maxsize=None)
def offsets(zone: str) -> frozenset[timedelta]:
    tz = ZoneInfo(zone)
    return frozenset([SPAN[0].astimezone(tz).utcoffset()] + [o for _, b, a in transitions(zone) for o in (b, a)])


def readings(wall: datetime, zone: str) -> list[datetime]:
    """Every instant whose local time in ``zone`` reads ``wall`` (0, 1 or 2 of them)."""
    tz = ZoneInfo(zone)
    found = set()
    for offset in offsets(zone):
        instant = (wall - offset).replace(tzinfo=UTC)
        if instant.astimezone(tz).utcoffset() == offset:
            found.add(instant)
    return sorted(found)


def reference_instants(wall: datetime, zone: str, both_halves: bool) -> list[tuple[datetime, str]]:
    """The README's rules for one matching wall time, each instant labelled with its rule."""
    found = readings(wall, zone)
    if len(found) == 1:
        return [(found[0], "plain")]
    if len(found) == 2:
        return [(found[0], "first"), (found[1], "second")] if both_halves else [(found[0], "first")]
    for instant, before, after in transitions(zone):
        if after > before and instant + before <= wall.replace(tzinfo=UTC) < instant + after:
            return [(((wall + (after - before)) - after).replace(tzinfo=UTC), "gap")]
    raise AssertionError(f"{wall} reads as no instant in {zone} but lies in no gap")


_DAY_NUMBERS = {name: n for n, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


def classic(expression: str) -> str:
    """The expression with each weekday range that ends at 7 written out as a
    list of days (7 is Sunday, 0): croniter then reads it as classic cron does."""
    fields = expression.split()
    if len(fields) != 5:
        return expression
    items = []
    for item in fields[4].split(","):
        match = re.fullmatch(r"(\w+)-7(?:/(\d+))?", item)
        if match:
            low = _DAY_NUMBERS.get(match[1], None)
            low = int(match[1]) if low is None else low
            items.append(",".join(str(day) for day in sorted({d % 7 for d in range(low, 8, int(match[2] or 1))})))
        else:
            items.append(item)
    return " ".join([*fields[:4], ",".join(items)])


def reference(expression: str, zone: str, start: datetime, count: int, both_halves: bool):
    """The first ``count`` fires strictly after ``start``: [(instant, rule)]."""
    tz = ZoneInfo(zone)
    local_start = start.astimezone(tz).replace(tzinfo=None) - NEAR
    walls = croniter(expression, local_start)
    found: dict[datetime, str] = {}
    while True:
        wall = walls.get_next(datetime)
        for instant, rule in reference_instants(wall, zone, both_halves):
            if instant > start:
                found.setdefault(instant, rule)
        ahead = sorted(found)
        # Walls more than 3 h past the count-th instant's local time cannot precede it.
        if len(ahead) >= count and wall > ahead[count - 1].astimezone(tz).replace(tzinfo=None) + NEAR:
            return [(instant, found[instant]) for instant in ahead[:count]]


# --- the comparison with croniter's own time-zone-aware answers --------------------------------------
def _near_gap(instant: datetime, zone: str) -> bool:
    return any(after > before and abs(instant - t) <= after - before for t, before, after in transitions(zone))


def _explain(instant: datetime, *, ours: bool, rules: dict, expression: str, zone: str, both_halves: bool) -> str:
    """Which documented rule makes this fire differ from croniter's (or fails)."""
    tz = ZoneInfo(zone)
    if ours:
        rule = rules[instant]
        if rule == "gap":
            # Our fire is a non-existent wall time moved forward by the gap's length.
            gap = next(a - b for t, b, a in transitions(zone) if t <= instant < t + (a - b))
            wall = instant.astimezone(tz).replace(tzinfo=None) - gap
            assert croniter.match(expression, wall) and readings(wall, zone) == []
            return "gap: moved forward by its length"
        assert rule == "second" and both_halves, f"croniter lacks our {rule} fire {instant} ({expression}, {zone})"
        return "repeated hour: hourly and sub-hourly run at both"
    wall = instant.astimezone(tz).replace(tzinfo=None)
    found = readings(wall, zone)
    if len(found) == 2 and instant == found[1] and croniter.match(expression, wall):
        assert not both_halves, f"we lack the second {wall} at {instant} ({expression}, {zone})"
        return "repeated hour: fixed times run once, at the first"
    assert _near_gap(instant, zone), f"croniter fires at {instant}, we do not ({expression}, {zone})"
    return "gap: croniter places the non-existent wall time elsewhere"


def compare_with_croniter(expression, zone, start, ours, rules, both_halves) -> list[str]:
    tz = ZoneInfo(zone)
    theirs_iter = croniter(expression, start.astimezone(tz))
    theirs = [theirs_iter.get_next(datetime).astimezone(UTC) for _ in range(COUNT)]
    until = min(ours[-1], theirs[-1])
    mine = {t for t in ours if t <= until}
    other = {t for t in theirs if t <= until}
    explained = [_explain(t, ours=True, rules=rules, expression=expression, zone=zone, both_halves=both_halves)
                 for t in sorted(mine - other)]
    explained += [_explain(t, ours=False, rules=rules, expression=expression, zone=zone, both_halves=both_halves)
                  for t in sorted(other - mine)]
    return explained


# --- the checks --------------------------------------------------------------------------------------
def check(frequency: str, config: dict, expression: str, zone: str, start: datetime) -> list[str]:
    expression = classic(expression)
    both_halves = croniter.expand(expression)[0][1] == ["*"]
    trigger = build_trigger(frequency, config, zone)
    ours = [t.astimezone(UTC) for t in next_fire_times(trigger, count=COUNT, now=start)]
    expected = reference(expression, zone, start, COUNT, both_halves)
    assert ours == [instant for instant, _ in expected], (frequency, config, zone, start)
    explained = compare_with_croniter(expression, zone, start, ours, dict(expected), both_halves)
    # A long-running trigger (from its previous fire) and a fresh one (from "now") agree,
    # also from instants between fires, as after a restart.
    # (Compared in UTC: PEP 495 makes == across zones false for the second of two equal wall times.)
    previous = start
    for fire in ours:
        assert trigger.get_next_fire_time(previous, previous + US).astimezone(UTC) == fire
        assert trigger.get_next_fire_time(None, previous + US).astimezone(UTC) == fire
        middle = previous + (fire - previous) / 2
        assert trigger.get_next_fire_time(None, middle).astimezone(UTC) == fire
        previous = fire
    return explained


@st.composite
def starts(draw, zone: str) -> datetime:
    changes = transitions(zone)
    if not changes:
        return draw(st.datetimes(SPAN[0].replace(tzinfo=None), SPAN[1].replace(tzinfo=None))).replace(tzinfo=UTC)
    instant = draw(st.sampled_from(changes))[0]
    around = draw(st.one_of(st.just(0), st.integers(-1, 1), st.integers(-48 * 3600, 48 * 3600)))
    return instant + timedelta(seconds=around) + draw(st.sampled_from([timedelta(0), US, -US]))


def _values(low: int, high: int):
    value = st.integers(low, high)
    ordered = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.integers(1, max(1, (high - low) // 2)).map(lambda step: f"*/{step}"),
        ordered.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.tuples(ordered, st.integers(1, 7)).map(lambda x: f"{x[0][0]}-{x[0][1]}/{x[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda vs: ",".join(map(str, sorted(vs)))),
    )


_DAY_NAMES = st.sampled_from(["sun", "mon", "tue", "wed", "thu", "fri", "sat", "mon-fri", "sat,sun"])
# Weekday ranges that end at 7 (Sunday): 7-7 is Sundays, 5-7 Friday to Sunday.
_TO_SUNDAY = st.one_of(
    st.tuples(st.integers(0, 7), st.one_of(st.just(""), st.integers(1, 7).map(lambda step: f"/{step}")))
    .map(lambda x: f"{x[0]}-7{x[1]}"),
    st.sampled_from(["fri-7", "sat-7", "mon-7/2"]),
)
_WEEKDAYS = st.one_of(st.just("*"), _values(0, 7), _DAY_NAMES, _TO_SUNDAY,
                      st.tuples(_values(0, 6), _TO_SUNDAY).map(",".join))
CRON = st.tuples(
    _values(0, 59), _values(0, 23), st.one_of(st.just("*"), st.just("*"), _values(1, 31)),
    st.one_of(st.just("*"), st.just("*"), _values(1, 12), st.just("jan,jul")),
    _WEEKDAYS,
).map(" ".join)


@EXAMPLES
@given(data=st.data(), expression=st.one_of(CRON, st.sampled_from(["@hourly", "@daily", "@weekly", "@monthly",
                                                                    "@yearly", "*/15 * * * *", "30 2 * * *"])))
def test_random_cron_matches_the_reference(data, expression):
    zone = data.draw(st.sampled_from(ZONES))
    try:
        croniter(classic(expression), datetime(2026, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        with pytest.raises(TimeConfigError, match="matches no date"):
            build_trigger("cron", {"expression": expression}, zone)
        return
    check("cron", {"expression": expression}, expression, zone, data.draw(starts(zone)))


@EXAMPLES
@given(data=st.data(), weekdays=_TO_SUNDAY, days=st.sampled_from(["*", "*", "13", "1-7"]))
def test_weekday_ranges_that_end_at_7_match_the_reference(data, weekdays, days):
    """7-7 is Sundays (croniter alone reads it as every day), 5-7 Friday to Sunday."""
    zone = data.draw(st.sampled_from(ZONES))
    expression = f"{data.draw(st.sampled_from(['0', '30', '*/20']))} {data.draw(st.sampled_from(['0', '2', '*']))} " \
                 f"{days} * {weekdays}"
    check("cron", {"expression": expression}, expression, zone, data.draw(starts(zone)))


_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_WORDS = ("minute", "hour", "day of month", "month", "day of week")


@st.composite
def reversed_ranges(draw) -> tuple[str, str, str]:
    """A classic expression with one reversed range a-b (a > b), perhaps with a
    step, in one of its fields: (expression, the range, the field's name)."""
    index = draw(st.integers(0, 4))
    low, high = _BOUNDS[index]
    top = draw(st.integers(low + 1, high))
    item = f"{top}-{draw(st.integers(low, top - 1))}" + draw(st.sampled_from(["", "/2"]))
    field = draw(st.sampled_from([item, f"{low},{item}"]))
    fields = ["0", "0", "*", "*", "*"]
    fields[index] = field
    return " ".join(fields), item, _FIELD_WORDS[index]


@EXAMPLES
@given(case=st.one_of(reversed_ranges(), st.sampled_from([("1-0 * * * *", "1-0", "minute"),
                                                         ("0 0 * * sat-sun", "sat-sun", "day of week"),
                                                         ("0 0 * dec-jan *", "dec-jan", "month")])))
def test_a_reversed_range_is_refused_naming_it(case):
    """croniter wraps a reversed range around (1-0 is every minute); classic
    cron never matches it. Refused, with the expression and the range named."""
    expression, item, field = case
    with pytest.raises(TimeConfigError) as refused:
        build_trigger("cron", {"expression": expression}, "Europe/Berlin")
    assert refused.value.field == "time_config.expression"
    assert f"{expression!r}: {item!r} in the {field} field is a reversed range" in str(refused.value)


_WEEKDAY_NUMBERS = {"sunday": (0, 7), "monday": (1,), "tuesday": (2,), "wednesday": (3,), "thursday": (4,),
                    "friday": (5,), "saturday": (6,)}


@st.composite
def frequencies(draw, start: datetime, zone: str) -> tuple[str, dict, str]:
    """A frequency, its time_config, and the same schedule written as cron (by hand, here).

    Times are drawn mostly from the local hours of the nearest change and from
    00:xx, where days went missing; any time may come."""
    nearest = min(transitions(zone), key=lambda change: abs(change[0] - start), default=None)
    hours = [0] if nearest is None else [0, (nearest[0] + nearest[1]).hour, (nearest[0] + nearest[2]).hour]
    hour = draw(st.one_of(st.sampled_from(hours), st.integers(0, 23)))
    minutes = [0, 15, 30, 45] if nearest is None else [0, 15, 30, 45, (nearest[0] + nearest[1]).minute]
    minute = draw(st.one_of(st.sampled_from(minutes), st.integers(0, 59)))
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "monthly"]))
    if kind == "hourly":
        return kind, {"minute": minute}, f"{minute} * * * *"
    if kind == "daily":
        return kind, {"hour": hour, "minute": minute}, f"{minute} {hour} * * *"
    if kind == "weekly":
        days = draw(st.lists(st.sampled_from(sorted(_WEEKDAY_NUMBERS)), min_size=1, max_size=3, unique=True))
        numbers = ",".join(str(draw(st.sampled_from(_WEEKDAY_NUMBERS[d]))) for d in days)
        return kind, {"days": days, "hour": hour, "minute": minute}, f"{minute} {hour} * * {numbers}"
    day = draw(st.one_of(st.integers(1, 31), st.just("last")))
    # croniter's L (last day of the month) stands in for "last"; the rest is classic.
    return kind, {"day": day, "hour": hour, "minute": minute}, f"{minute} {hour} {'L' if day == 'last' else day} * *"


@EXAMPLES
@given(data=st.data())
def test_frequencies_match_their_cron_translation(data):
    zone = data.draw(st.sampled_from(ZONES))
    start = data.draw(starts(zone))
    frequency, config, expression = data.draw(frequencies(start, zone))
    check(frequency, config, expression, zone, start)


def _change_walls(zone: str, instant: datetime, before: timedelta, after: timedelta) -> list[str]:
    """Expressions aimed at one change: the wall time in the middle of its gap or
    repeated stretch, as a fixed time and as an hourly minute, plus early-morning times."""
    middle = (instant + min(before, after) + abs(after - before) / 2).replace(tzinfo=None)
    return [f"{middle.minute} {middle.hour} * * *", f"{middle.minute} * * * *", "*/15 * * * *", "30 0 * * *",
            "0 0 * * *", f"{middle.minute} {middle.hour} * * 0"]


@pytest.mark.parametrize("zone", [z for z in ZONES if transitions(z)])
def test_every_change_of_2026_to_2028(zone):
    assert len(transitions(zone)) == 6  # two a year
    explained = set()
    for instant, before, after in transitions(zone):
        for expression in _change_walls(zone, instant, before, after):
            for start in (instant - timedelta(hours=26), instant - timedelta(hours=1), instant - US,
                          instant + timedelta(minutes=20)):
                explained.update(check("cron", {"expression": expression}, expression, zone, start))
    # croniter differs from us at every kind of change, and always by a documented rule.
    assert {"gap: moved forward by its length", "repeated hour: fixed times run once, at the first"} <= explained
