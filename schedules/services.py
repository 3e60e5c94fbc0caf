"""Writes to schedules: the original design's create/update/delete calls.

Each validates the whole row with ``full_clean()`` before writing, so a bad
value raises ``ValidationError`` naming the field and leaves the row as it was.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from schedules.models import Schedule

UPDATABLE_FIELDS = frozenset(
    {"domain_config_id", "domain", "profile", "profile_id", "frequency", "time_config", "timezone",
     "scan_settings", "enabled", "edited_manually"}
)


# Python types the API takes as they are: the model's field cleaning would
# otherwise coerce them silently ("yes" is not True, 42 is not "42").
_TYPES: dict[str, tuple[type, ...]] = {
    "domain_config_id": (str,),
    "domain": (str,),
    "frequency": (str,),
    "time_config": (dict,),
    "timezone": (str,),
    "scan_settings": (dict,),
    "enabled": (bool,),
    "edited_manually": (bool,),
}
_TYPE_WORDS = {str: "a string", dict: "an object (dict)", bool: "True or False"}


def _check_types(values: dict[str, Any]) -> None:
    errors = {}
    for name, value in values.items():
        expected = _TYPES.get(name)
        if expected is not None and not isinstance(value, expected):
            errors[name] = f"{name}: {value!r} is not {_TYPE_WORDS[expected[0]]}"
    if errors:
        raise ValidationError(errors)


def create_schedule(
    *,
    domain_config_id: str,
    domain: str,
    frequency: str,
    time_config: dict,
    enabled: bool = True,
    timezone: str | None = None,
    scan_settings: dict | None = None,
    profile_id: uuid.UUID | str | None = None,
) -> uuid.UUID:
    _check_types(
        {"domain_config_id": domain_config_id, "domain": domain, "frequency": frequency, "time_config": time_config,
         "enabled": enabled, "scan_settings": {} if scan_settings is None else scan_settings,
         **({} if timezone is None else {"timezone": timezone})}
    )
    schedule = Schedule(
        domain_config_id=domain_config_id,
        domain=domain,
        frequency=frequency,
        time_config=time_config,
        enabled=enabled,
        scan_settings={} if scan_settings is None else scan_settings,
        profile_id=profile_id,
    )
    if timezone is not None:
        schedule.timezone = timezone
    schedule.full_clean()
    schedule.save()
    return schedule.schedule_id


def update_schedule(*, schedule_id: uuid.UUID | str, **changes: Any) -> Schedule:
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise TypeError(f"update_schedule() got unknown field(s): {', '.join(unknown)}")
    _check_types(changes)
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(schedule_id=schedule_id)
        for field, value in changes.items():
            setattr(schedule, field, value)
        schedule.full_clean()
        schedule.save()
    return schedule


def delete_schedule(*, schedule_id: uuid.UUID | str) -> bool:
    """Deletes the schedule; its execution history stays. True if it existed."""
    deleted, _ = Schedule.objects.filter(schedule_id=schedule_id).delete()
    return deleted > 0
