"""Fire times from local calendar dates: croniter walks, the DST rules convert.

croniter (classic Vixie semantics: 0 and 7 are Sunday, day-of-month OR
day-of-week, the @hourly..@yearly macros) walks *naive* local wall times, so a
day is always a calendar day, never "24 hours". Where croniter strays from
classic cron, parse_classic corrects or refuses first: a weekday range ending
at 7 is written out (croniter reads ``7-7`` as every day), and a reversed
range (``1-0``, which croniter wraps around to every minute) is refused.
Only then is each wall time turned into an instant, under the rules the
README states:

- a wall time that does not exist (spring forward) moves forward by the length
  of the gap: 02:30 in a 02:00->03:00 gap runs at 03:30, in Lord Howe's
  02:00->02:30 gap 02:15 runs at 02:45;
- a wall time that happens twice (fall back) runs once, at its first
  occurrence, for schedules at fixed times of day (daily, weekly, monthly,
  cron with a fixed hour field);
- hourly and sub-hourly schedules (cron with ``*`` in the hour field) run at
  both occurrences, so they keep their real-time spacing through the
  repeated hour.

This replaces APScheduler's CronTrigger, which steps to the next day in wall
time but adds the step in UTC, so a 23-hour day lands an hour late and the
day after spring-forward is lost for times 00:00-00:59 (APScheduler issues
#606 and #529), and which reads cron weekday numbers with 0 = Monday.

The trigger is a pure function of one instant: ``get_next_fire_time(prev,
now)`` is the first fire at or after ``min(now, prev + 1 us)``, exactly what
``get_next_fire_time(None, that instant)`` answers. A process that has run for
months and one started a second ago compute the same times, and one trigger
object can be shared by every schedule with the same settings.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from apscheduler.triggers.base import BaseTrigger
from croniter import CroniterBadCronError, CroniterBadDateError, croniter

UTC = dt_timezone.utc
MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Names by field (3: month, 4: day of week) and the numbers they stand for.
_NUMBERS = {3: {name: n for n, name in enumerate(_MONTHS, start=1)}, 4: {name: n for n, name in enumerate(_DAYS)}}
_NAMES = {index: set(numbers) for index, numbers in _NUMBERS.items()}
_WEEKDAY = 4
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_FIELD_CHARS = re.compile(r"^[0-9a-z*,/-]+$")
_ITEM = re.compile(r"(?P<low>[0-9a-z]+)(?:-(?P<high>[0-9a-z]+))?(?:/(?P<step>[0-9]+))?")
# No zone moves its clocks by 3 hours or more at once: offsets read 3 h either
# side of an instant tell whether a change is near enough to matter.
_NEAR = timedelta(hours=3)
_ONE_MINUTE = timedelta(minutes=1)
# Any start for the feasibility check: croniter looks up to 50 years ahead,
# longer than the 28-year cycle in which every (month, day, weekday) recurs.
_FEASIBILITY_START = datetime(2001, 1, 1)


class CronSyntaxError(ValueError):
    """A crontab expression that is not classic cron, or can never fire."""


def parse_classic(expression: str) -> tuple[str, croniter]:
    """The expression (normalised) and its calendar, checked to be classic
    five-field cron that can fire.

    croniter also reads extensions (L, W, #, H, seconds, years); schedules are
    kept to what a crontab means so that the same line means the same thing
    everywhere. Raises CronSyntaxError with a message that quotes the value.
    """
    text = " ".join(expression.split()).lower()
    if text.startswith("@"):
        if text not in MACROS:
            raise CronSyntaxError(f"{expression!r} is not a cron macro ({', '.join(MACROS)})")
    else:
        fields = expression.split()
        if len(fields) != 5:
            raise CronSyntaxError(
                f"{expression!r} has {len(fields)} fields; a crontab has five (minute hour day month weekday)"
            )
        for index, field in enumerate(fields):
            names = set(re.findall(r"[a-z]+", field.lower()))
            if not _FIELD_CHARS.match(field.lower()) or not names <= _NAMES.get(index, set()):
                raise CronSyntaxError(
                    f"{expression!r}: {field!r} is not a classic cron {_FIELD_NAMES[index]} field "
                    "(numbers, names, *, ranges a-b, lists a,b and steps /n)"
                )
        text = " ".join(_classic_field(expression, index, field.lower()) for index, field in enumerate(fields))
    try:
        walls = croniter(text, _FEASIBILITY_START)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise CronSyntaxError(f"{expression!r}: {exc}") from None
    # Only days of month restricted while weekdays are not ("31 2") can rule
    # out every date; croniter then finds no match and says so at once.
    days, weekdays = walls.expanded[2], walls.expanded[4]
    if days != ["*"] and weekdays == ["*"]:
        try:
            copy.copy(walls).get_next(datetime)
        except CroniterBadDateError:
            raise CronSyntaxError(
                f"{expression!r} matches no date (such as 31 February), so it would never fire"
            ) from None
    return text, walls


def _classic_field(expression: str, index: int, field: str) -> str:
    """One field as croniter reads it classically: a reversed range (``1-0``,
    ``sat-mon``; croniter wraps it around, classic cron never matches it) is
    refused, and a weekday range that ends at 7 (Sunday) is written out
    (croniter reads ``7-7`` and ``0-7/1`` as every day): ``5-7`` is 5,6,0."""
    items = []
    for item in field.split(","):
        match = _ITEM.fullmatch(item)
        numbers = _NUMBERS.get(index, {})
        if match is None or not all(part.isdigit() or part in numbers for part in match.group("low", "high") if part):
            items.append(item)  # "*", "*/n", or a bad number croniter reports
            continue
        low = int(numbers.get(match["low"], match["low"]))
        high = int(numbers.get(match["high"], match["high"])) if match["high"] else None
        if high is not None and low > high:
            example = "5-7 for Friday to Sunday (7 is Sunday too)" if index == _WEEKDAY else "22-23,0-2 for 22-2"
            raise CronSyntaxError(
                f"{expression!r}: {item!r} in the {_FIELD_NAMES[index]} field is a reversed range ({low} after {high}); "
                f"classic cron reads ranges upwards: write upward ranges, e.g. {example}"
            )
        step = int(match["step"] or 1)
        if index != _WEEKDAY or 7 not in (low, high) or (high or low) > 7 or step == 0:
            items.append(item)  # croniter reads it classically, or reports it
            continue
        last = 7 if high is None and match["step"] else (high if high is not None else low)
        items.append(",".join(str(day) for day in sorted({day % 7 for day in range(low, last + 1, step)})))
    return ",".join(items)


class LocalTimeTrigger(BaseTrigger):
    """Fires at the wall times a (classic) cron expression matches in ``timezone``.

    ``both_halves`` is the hourly/sub-hourly rule, for expressions with ``*``
    as the hour: a wall time that happens twice fires at both occurrences.
    Otherwise it fires at the first only. ``walls`` is the expression already
    parsed by croniter (parse_classic), if the caller has it. Nothing here
    changes after __init__, so one object can serve any number of schedules
    and threads.
    """

    __slots__ = ("expression", "timezone", "both_halves", "_walls")

    def __init__(self, expression: str, timezone: zoneinfo.ZoneInfo, walls: croniter | None = None):
        self.expression = expression
        self.timezone = timezone
        # Parsed once; each call walks a shallow copy, so calls never share state.
        self._walls = walls if walls is not None else croniter(expression, _FEASIBILITY_START)
        self.both_halves = self._walls.expanded[1] == ["*"]

    def __getstate__(self):
        return {"expression": self.expression, "timezone": self.timezone.key}

    def __setstate__(self, state):
        self.__init__(state["expression"], zoneinfo.ZoneInfo(state["timezone"]))

    def __repr__(self):
        return f"<LocalTimeTrigger {self.expression!r} {self.timezone.key} both_halves={self.both_halves}>"

    def __str__(self):
        return f"cron[{self.expression}] {self.timezone.key}"

    def get_next_fire_time(self, previous_fire_time, now):
        start = now.astimezone(UTC)
        if previous_fire_time is not None:
            # In UTC: adding to a local time is wall-clock arithmetic and
            # drops the fold that tells the two 02:30s of fall-back apart.
            start = min(start, previous_fire_time.astimezone(UTC) + timedelta(microseconds=1))
        try:
            fire = self.first_fire_at_or_after(start)
        except CroniterBadDateError:  # no match within croniter's 50-year horizon
            return None
        return fire.astimezone(self.timezone) if fire is not None else None

    def first_fire_at_or_after(self, start: datetime) -> datetime | None:
        """The earliest fire instant >= ``start`` (aware, in UTC).

        Wall times are walked in calendar order, but the instants they map to
        are not always in that order near a change: a gap's 02:50 moved to
        03:50 comes after a real 03:10, and the second half of a repeated hour
        comes after the first. So the walk starts that far before ``start``'s
        wall time and goes on that far past the best instant found. Away from
        a change both margins are zero and one croniter step answers.
        """
        start = start.astimezone(UTC)
        local_start = start.astimezone(self.timezone).replace(tzinfo=None, fold=0)
        walls = self._walls_from(local_start - self._shift_near(start))
        best = horizon = None
        for wall in walls:
            if horizon is not None and wall > horizon:
                break
            for instant in self._instants(wall):
                if instant >= start and (best is None or instant < best):
                    best = instant
                    horizon = best.astimezone(self.timezone).replace(tzinfo=None) + self._shift_near(best)
            if horizon is not None and horizon <= wall:
                break  # walls come in order: the next one is past the horizon
        return best

    def _walls_from(self, wall: datetime):
        """Matching naive wall times >= ``wall``, in calendar order (croniter)."""
        minute = wall.replace(second=0, microsecond=0)
        walker = copy.copy(self._walls)
        # croniter answers strictly after its start: start one minute early
        # when ``wall`` is itself a whole minute that may match.
        walker.set_current(minute - _ONE_MINUTE if minute == wall else minute, force=True)
        while True:
            yield walker.get_next(datetime)

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The instants at which one matching wall time fires (the DST rules)."""
        first = wall.replace(tzinfo=self.timezone).astimezone(UTC)
        second = wall.replace(tzinfo=self.timezone, fold=1).astimezone(UTC)
        if second <= first:
            # Unambiguous, or in a gap: fold=0 reads the wall time with the
            # offset from before the change, which is the wall time moved
            # forward by the length of the gap (PEP 495).
            return (first,)
        return (first, second) if self.both_halves else (first,)

    def _shift_near(self, instant: datetime) -> timedelta:
        """How far the zone's offset moves within 3 hours of ``instant`` (usually 0)."""
        tz = self.timezone
        here = instant.astimezone(tz).utcoffset()
        before = (instant - _NEAR).astimezone(tz).utcoffset()
        after = (instant + _NEAR).astimezone(tz).utcoffset()
        return max(abs(here - before), abs(after - here))
