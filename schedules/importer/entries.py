"""Reading the entries of the API's answer: shape, bounds, accepted forms.

Each entry is judged on its own: a bad one is rejected with its reason (or
skipped, when it has no schedule) and never stops the others. The values
that come out are Schedule field values; the model's full_clean checks the rest.

Accepted forms, beyond the original ``{"hour": 2, "minute": 0}``:
``"time": "02:00"`` (HH:MM), and ``null`` for any optional field, which
means "not set" (``"timezone": null`` is TIME_ZONE, ``"accept_selector": null``
is no such setting).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from scanner_project.redaction import shown
from schedules.importer.config import importer_config
from schedules.json_limits import json_problem
from schedules.validators import is_integer, normalize_domain

SCHEDULE_KEYS = {"frequency", "time", "timezone", "spread_minutes"}
_HH_MM = re.compile(r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)")


@dataclass
class Entry:
    domain_config_id: str
    values: dict[str, Any]


@dataclass
class ParsedEntries:
    entries: list[Entry] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped_reasons: list[str] = field(default_factory=list)


class _Reject(Exception):
    pass


class _Skip(Exception):
    pass


def answer_ids(entries: list[Any]) -> list[str]:
    return [e["domain_config_id"] for e in entries if isinstance(e, dict) and isinstance(e.get("domain_config_id"), str)]


def parse_entries(entries: list[Any]) -> ParsedEntries:
    ids = Counter(answer_ids(entries))
    parsed = ParsedEntries()
    for index, raw in enumerate(entries):
        dcid = raw.get("domain_config_id") if isinstance(raw, dict) else None
        # Bounded first: depth, size, numbers and strings, before anything
        # recurses through the entry, converts its numbers or stores it.
        problem = json_problem(raw, name=_label(dcid=dcid, index=index))
        if problem:
            parsed.rejected.append(problem)
            continue
        if isinstance(dcid, str) and ids[dcid] > 1:
            # Which copy is right is unknowable; importing either could be wrong.
            parsed.rejected.append(f"{dcid}: domain_config_id: appears {ids[dcid]} times in the answer")
            continue
        try:
            values = _entry_values(raw=raw, index=index)
        except _Skip as skip:
            parsed.skipped_reasons.append(str(skip))
            continue
        except _Reject as reject:
            parsed.rejected.append(str(reject))
            continue
        parsed.entries.append(Entry(domain_config_id=dcid, values=values))
    return parsed


def _label(*, dcid: Any, index: int) -> str:
    if isinstance(dcid, str) and 0 < len(dcid) <= 255 and dcid.isprintable():
        return dcid
    return f"entry #{index}"


def _entry_values(*, raw: Any, index: int) -> dict[str, Any]:
    """The entry as Schedule field values; shape only, the model checks the rest."""
    if not isinstance(raw, dict):
        raise _Reject(f"entry #{index}: {type(raw).__name__} is not an object")
    dcid = raw.get("domain_config_id")
    if not isinstance(dcid, str) or not dcid.strip() or dcid != dcid.strip():
        raise _Reject(f"entry #{index}: domain_config_id: {shown(dcid)} is not a non-empty string")
    data = raw.get("data")
    if not isinstance(data, dict):
        raise _Reject(f"{dcid}: data: {shown(data)} is not an object")
    if data.get("domain") is None:
        raise _Reject(f"{dcid}: domain: is required")
    if not isinstance(data["domain"], str):
        raise _Reject(f"{dcid}: domain: {shown(data['domain'])} is not a string")
    schedule = data.get("schedule")
    if schedule is None:
        raise _Skip(f"{dcid}: has no schedule")
    if not isinstance(schedule, dict):
        raise _Reject(f"{dcid}: schedule: {shown(schedule)} is not an object")
    schedule = _without_nulls(schedule)
    unknown = sorted(set(schedule) - SCHEDULE_KEYS)
    if unknown:
        # Rejected rather than dropped: the API would believe it was applied.
        raise _Reject(f"{dcid}: schedule.{unknown[0]}: is not a schedule setting ({', '.join(sorted(SCHEDULE_KEYS))})")
    if "frequency" not in schedule:
        raise _Reject(f"{dcid}: schedule.frequency: is required")
    if not isinstance(schedule["frequency"], str):
        raise _Reject(f"{dcid}: frequency: {shown(schedule['frequency'])} is not a string")
    spread = schedule.get("spread_minutes")
    if spread is not None and not is_integer(spread):
        # The one number rule (validators.is_integer): the model field would
        # turn "60" into 60, true into 1 and 1.5 into 1.
        raise _Reject(f"{dcid}: spread_minutes: {shown(spread)} is not an integer")
    return {
        "domain": _normalized(data["domain"]),
        "frequency": schedule["frequency"],
        "time_config": _time_config(dcid=dcid, value=schedule.get("time", {})),
        "timezone": schedule.get("timezone", importer_config().default_timezone),
        "spread_minutes": spread,
        "scan_settings": _without_nulls({k: v for k, v in data.items() if k not in ("domain", "schedule")}),
    }


def _normalized(domain: str) -> str:
    # Compared with the stored (normalized) domain: EXAMPLE.COM is no change.
    try:
        return normalize_domain(domain)
    except ValidationError:
        return domain  # the model rejects it, naming the value as sent


def _without_nulls(values: dict[str, Any]) -> dict[str, Any]:
    # An optional field sent as null is a field not sent.
    return {key: value for key, value in values.items() if value is not None}


def _time_config(*, dcid: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value  # an object, checked by the model; anything else is refused there
    match = _HH_MM.fullmatch(value)
    if not match:
        raise _Reject(f'{dcid}: schedule.time: {shown(value)} is neither "HH:MM" (00:00-23:59) nor an object')
    return {"hour": int(match["hour"]), "minute": int(match["minute"])}
