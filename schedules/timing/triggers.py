"""From a schedule's frequency and time_config to an APScheduler trigger.

This module validates the stored shape (with errors that name the field and
the value) and picks the trigger. Every calendar frequency becomes a classic
cron expression for ``cron.LocalTimeTrigger``, the one place where wall times
become instants under the DST rules; interval and once stay APScheduler's.
Triggers are pure: the same (frequency, time_config, timezone) gives the same
fire times on every instance, which is what lets instances agree on slots.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import lru_cache
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import croniter

from scanner_project.timezones import is_zone_name, why_not_a_zone
from schedules.timing.cron import CronSyntaxError, LocalTimeTrigger, parse_classic
from schedules.timing.spread import spread
from schedules.validators import is_integer

FREQUENCIES = ("hourly", "daily", "weekly", "monthly", "cron", "interval", "once")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_ABBR = {name: name[:3] for name in WEEKDAYS}
# Months without a 29th, 30th or 31st (February counted as without a 29th).
_SHORT_MONTHS = {29: "February (except in leap years)", 30: "February", 31: "February, April, June, September and November"}

# Interval slots are counted from a fixed epoch, not from the moment a process
# loaded the job: every instance then computes the same slots.
INTERVAL_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
_INTERVAL_UNITS = ("seconds", "minutes", "hours")
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}
MAX_INTERVAL_SECONDS = 100 * 366 * 86400
# A once schedule runs before this instant. Its slot is at most a day later
# (spread: MAX_SPREAD_MINUTES, DEFAULT_SPREAD_SECONDS), and every zone is
# within a day of UTC, so every page can show it in every zone: year 9999
# plus a spread used to overflow datetime (HTTP 500) east of UTC.
ONCE_LATEST = datetime(9000, 1, 1, tzinfo=dt_timezone.utc)
_ALLOWED_KEYS = {
    "hourly": {"minute"},
    "daily": {"hour", "minute"},
    "weekly": {"day", "days", "hour", "minute"},
    "monthly": {"day", "hour", "minute"},
    "cron": {"expression"},
    "interval": set(_INTERVAL_UNITS),
    "once": {"at"},
}


class TimeConfigError(ValueError):
    """A frequency or time_config that cannot become a trigger.

    ``field`` is the path of the bad value (``time_config.hour``) so that forms
    and importers can attach the message where it belongs.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _int_field(config: dict, key: str, low: int, high: int) -> int:
    if key not in config:
        raise TimeConfigError(f"time_config.{key}", f"is required (an integer {low}-{high})")
    value = config[key]
    if not is_integer(value):
        raise TimeConfigError(f"time_config.{key}", f"{value!r} is not an integer {low}-{high}")
    if not low <= value <= high:
        raise TimeConfigError(f"time_config.{key}", f"{value!r} is out of range {low}-{high}")
    return value


def _weekdays(config: dict) -> list[str]:
    if "day" in config and "days" in config:
        raise TimeConfigError("time_config.days", "give either day or days, not both")
    key = "days" if "days" in config else "day"
    raw = config.get(key)
    if raw is None:
        raise TimeConfigError("time_config.day", "is required (monday..sunday)")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise TimeConfigError(f"time_config.{key}", "needs at least one weekday")
    days = []
    for item in items:
        if not isinstance(item, str) or item.strip().lower() not in WEEKDAYS:
            raise TimeConfigError(f"time_config.{key}", f"{item!r} is not a weekday (monday..sunday)")
        days.append(item.strip().lower())
    return days


def _month_day(config: dict) -> int | str:
    if "day" not in config:
        raise TimeConfigError("time_config.day", 'is required (1-31 or "last")')
    value = config["day"]
    if value == "last":
        return "last"
    if not is_integer(value) or not 1 <= value <= 31:
        raise TimeConfigError("time_config.day", f'{value!r} is not a day of month (1-31 or "last")')
    return value


def _interval(config: dict) -> dict[str, int]:
    units = {key: config[key] for key in _INTERVAL_UNITS if key in config}
    if not units:
        raise TimeConfigError("time_config", "interval needs one of seconds, minutes, hours")
    for key, value in units.items():
        if not is_integer(value) or value < 0:
            raise TimeConfigError(f"time_config.{key}", f"{value!r} is not a non-negative integer")
    seconds = sum(value * _UNIT_SECONDS[key] for key, value in units.items())
    if seconds < 1:
        raise TimeConfigError("time_config", f"{json.dumps(units, sort_keys=True)} is an interval of 0 seconds; "
                                             "an interval must be at least 1 second")
    if seconds > MAX_INTERVAL_SECONDS:  # timedelta overflows long before 10**20 hours
        raise TimeConfigError("time_config", f"interval of {seconds} seconds is longer than {MAX_INTERVAL_SECONDS} "
                                             f"(100 years): {json.dumps(units, sort_keys=True)}")
    return units


def _cron_walls(expression: Any) -> tuple[str, croniter]:
    if not isinstance(expression, str) or not expression.strip():
        raise TimeConfigError("time_config.expression", f"{expression!r} is not a crontab expression")
    try:
        return parse_classic(expression)
    except CronSyntaxError as exc:
        raise TimeConfigError("time_config.expression", str(exc)) from None


def _once_at(config: dict, tz: zoneinfo.ZoneInfo) -> datetime:
    raw = config.get("at")
    if not isinstance(raw, str):
        raise TimeConfigError("time_config.at", f"{raw!r} is not an ISO-8601 date and time")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise TimeConfigError("time_config.at", f"{raw!r} is not an ISO-8601 date and time") from None
    # A naive time is a wall time in the schedule's zone; fold=0 applies the
    # same DST rules as the calendar frequencies (gap: forward by its length).
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    try:  # 9999-12-31T23:59:59 west of UTC is past the last datetime Python can hold
        utc = when.astimezone(dt_timezone.utc)
    except OverflowError:
        utc = ONCE_LATEST
    if utc >= ONCE_LATEST:
        raise TimeConfigError("time_config.at", f"{raw!r} is too far in the future: a once schedule must be before "
                                                f"{ONCE_LATEST.isoformat()}")
    return utc.astimezone(tz)  # via UTC: shows 02:30 in a gap as 03:30


def check_once_not_past(frequency: str, time_config: Any, timezone: str, *, now: datetime) -> None:
    """New or changed ``once`` schedules must be in the future: one in the past
    would never run. Stored rows are not checked here, so an old one still
    loads (and is recorded as missed once). Raises TimeConfigError."""
    if frequency != "once" or not isinstance(time_config, dict):
        return
    when = _once_at(time_config, parse_timezone(timezone))
    if when <= now:
        raise TimeConfigError(
            "time_config.at",
            f"{time_config['at']!r} is in the past (now {now.astimezone(when.tzinfo).isoformat(timespec='seconds')}); "
            "a once schedule must be in the future",
        )


def check_interval_minimum(frequency: str, time_config: Any, *, minimum: int) -> None:
    """An interval shorter than MIN_INTERVAL_SECONDS writes a history row that
    often, forever: refused when a schedule is saved or imported. Stored rows
    are not checked here, so an older, faster one still loads. Raises
    TimeConfigError; call after build_trigger (which checks the shape)."""
    if frequency != "interval" or not isinstance(time_config, dict):
        return
    seconds = sum(time_config.get(key, 0) * _UNIT_SECONDS[key] for key in _INTERVAL_UNITS)
    if seconds < minimum:
        raise TimeConfigError("time_config", f"{json.dumps(time_config, sort_keys=True)} is an interval of {seconds} "
                                             f"seconds, shorter than MIN_INTERVAL_SECONDS ({minimum})")


def skipped_months_warning(frequency: str, time_config: Any) -> str | None:
    """Monthly on day 29-31 skips the months without that day (as cron does)."""
    day = time_config.get("day") if frequency == "monthly" and isinstance(time_config, dict) else None
    if day not in _SHORT_MONTHS:
        return None
    return (
        f"time_config.day: {day} does not occur in {_SHORT_MONTHS[day]}; those months are skipped. "
        'Use "day": "last" to run on the last day of every month.'
    )


def parse_timezone(name: Any) -> zoneinfo.ZoneInfo:
    if not is_zone_name(name):  # localtime, posixrules, Factory: scanner_project.timezones
        raise TimeConfigError("timezone", f"{name!r} {why_not_a_zone(name)}")
    return zoneinfo.ZoneInfo(name)


def build_trigger(frequency: str, time_config: Any, timezone: str) -> BaseTrigger:
    """The one place where a schedule becomes a trigger. Raises TimeConfigError."""
    if frequency not in FREQUENCIES:
        raise TimeConfigError("frequency", f"{frequency!r} is not one of {', '.join(FREQUENCIES)}")
    if not isinstance(time_config, dict):
        raise TimeConfigError("time_config", f"{time_config!r} is not an object")
    unknown = sorted(set(time_config) - _ALLOWED_KEYS[frequency])
    if unknown:
        raise TimeConfigError(f"time_config.{unknown[0]}", f"is not a setting of a {frequency} schedule")
    tz = parse_timezone(timezone)
    if frequency == "interval":
        return IntervalTrigger(**_interval(time_config), start_date=INTERVAL_EPOCH, timezone=tz)
    if frequency == "once":
        return DateTrigger(run_date=_once_at(time_config, tz), timezone=tz)
    if frequency == "cron":
        text, walls = _cron_walls(time_config.get("expression"))
        return LocalTimeTrigger(text, tz, walls)
    return LocalTimeTrigger(calendar_cron(frequency, time_config), tz)


def calendar_cron(frequency: str, time_config: dict) -> str:
    """The cron line of a calendar frequency (validated): hourly {"minute": 5}
    is "5 * * * *"; monthly {"day": "last", ...} uses croniter's L."""
    if frequency == "hourly":
        return f"{_int_field(time_config, 'minute', 0, 59)} * * * *"
    if frequency == "weekly":
        days = ",".join(_WEEKDAY_ABBR[d] for d in _weekdays(time_config))
    elif frequency == "monthly":
        day = _month_day(time_config)
    hour = _int_field(time_config, "hour", 0, 23)
    minute = _int_field(time_config, "minute", 0, 59)
    if frequency == "daily":
        return f"{minute} {hour} * * *"
    if frequency == "weekly":
        return f"{minute} {hour} * * {days}"
    return f"{minute} {hour} {'L' if day == 'last' else day} * *"


@lru_cache(maxsize=4096)
def trigger_for_key(key: str) -> BaseTrigger:
    """build_trigger for a key ``json.dumps([frequency, time_config, timezone],
    sort_keys=True)``; equal keys share one trigger object.

    APScheduler triggers hold no state between calls, so 100,000 daily
    schedules at a handful of distinct times need only a handful of triggers.
    """
    frequency, time_config, timezone = json.loads(key)
    return build_trigger(frequency, time_config, timezone)


def trigger_key(frequency: str, time_config: Any, timezone: str) -> str:
    return json.dumps([frequency, time_config, timezone], sort_keys=True)


def trigger_of(*, frequency: str, time_config: Any, timezone: str, offset_seconds: int = 0) -> BaseTrigger:
    """A schedule's slots as they really run: its time config, moved by its
    spread offset. The one way the admin, the models and the runtime build a
    trigger; equal time configs share one cached trigger. Raises TimeConfigError."""
    return spread(trigger_for_key(trigger_key(frequency, time_config, timezone)), offset_seconds)


def next_fire_times(trigger: BaseTrigger, *, count: int, now: datetime) -> list[datetime]:
    """The next ``count`` fire times strictly after ``now`` (the clock is an input)."""
    times: list[datetime] = []
    previous = None
    # Step in UTC: adding to a local time is wall-clock arithmetic and loses
    # the fold that tells the two 02:30s of a fall-back night apart.
    cursor = now.astimezone(dt_timezone.utc) + timedelta(microseconds=1)
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, cursor)
        if fire is None:
            break
        if fire > now:  # a DateTrigger answers its date even when it has passed
            times.append(fire)
        previous = fire
        cursor = fire.astimezone(dt_timezone.utc) + timedelta(microseconds=1)
    return times


def describe(frequency: str, time_config: dict, timezone: str) -> str:
    """The schedule in words, for admin lists: "Daily at 02:00 Europe/Berlin"."""
    config = time_config if isinstance(time_config, dict) else {}
    hm = f"{config.get('hour', 0):02}:{config.get('minute', 0):02}" if isinstance(config.get("hour", 0), int) else "?"
    if frequency == "hourly":
        return f"Hourly at minute {config.get('minute', '?')}"
    if frequency == "daily":
        return f"Daily at {hm} {timezone}"
    if frequency == "weekly":
        days = config.get("days") or [config.get("day", "?")]
        names = ", ".join(str(d).capitalize() for d in days)
        return f"Weekly on {names} at {hm} {timezone}"
    if frequency == "monthly":
        day = config.get("day", "?")
        day_words = "the last day" if day == "last" else f"day {day}"
        return f"Monthly on {day_words} at {hm} {timezone}"
    if frequency == "cron":
        return f"Cron {config.get('expression', '?')} {timezone}"
    if frequency == "interval":
        parts = [f"{config[k]} {k[:-1] if config[k] == 1 else k}" for k in reversed(_INTERVAL_UNITS) if config.get(k)]
        return "Every " + " ".join(parts) if parts else "Every ?"
    if frequency == "once":
        return f"Once at {config.get('at', '?')} {timezone}"
    return frequency
