"""Writes to schedules: the original design's create/update/delete calls.

Each validates the whole row with ``full_clean()`` before writing, so a bad
value raises ``ValidationError`` naming the field and leaves the row as it was.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from .models import Schedule

UPDATABLE_FIELDS = frozenset(
    {"domain_config_id", "domain", "profile", "profile_id", "frequency", "time_config", "timezone",
     "scan_settings", "enabled", "edited_manually"}
)


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
    schedule = Schedule(
        domain_config_id=domain_config_id,
        domain=domain,
        frequency=frequency,
        time_config=time_config,
        enabled=enabled,
        scan_settings=scan_settings or {},
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
