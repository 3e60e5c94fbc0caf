"""What an instance loads for each enabled schedule, and how two loads differ.

A JobSpec is the snapshot of one schedule a running instance works from. Its
``trigger_key`` covers only what moves fire times; ``content_hash`` covers the
whole snapshot. Comparing the two tells add / reschedule / refresh / remove
apart, so an unrelated edit (a description) never resets a job's next fire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator

from apscheduler.triggers.base import BaseTrigger
from django.db.models import F, QuerySet, TextField
from django.db.models.functions import MD5, Cast, JSONObject

from history.models import schedule_job_id
from schedules.models import ScanProfile, Schedule
from schedules.timing.spread import spread_offset
from schedules.timing.triggers import TimeConfigError, trigger_key, trigger_of

logger = logging.getLogger("schedules.runtime.specs")

# The columns a snapshot is built from: one query, no model instances, so a
# full diff of 100,000 schedules stays cheap.
SPEC_COLUMNS = (
    "schedule_id",
    "domain",
    "domain_config_id",
    "frequency",
    "time_config",
    "timezone",
    "scan_settings",
    *(f"profile__{name}" for name in ScanProfile.SETTING_COLUMNS),
    "spread_minutes",
)


@dataclass(frozen=True)
class JobSpec:
    schedule_id: uuid.UUID
    domain: str
    domain_config_id: str
    frequency: str
    time_config: dict
    timezone: str
    scan_settings: dict
    trigger_key: str
    content_hash: str
    row_hash: str = ""  # the database's digest of the row (see row_digest)
    offset_seconds: int = 0  # the spread offset (spread.py), part of trigger_key

    @property
    def trigger(self) -> BaseTrigger:
        return trigger_of(frequency=self.frequency, time_config=self.time_config, timezone=self.timezone,
                          offset_seconds=self.offset_seconds)

    @property
    def job_id(self) -> str:
        return schedule_job_id(self.schedule_id)

    @property
    def max_retries(self) -> int:
        wanted = self.scan_settings
        value = wanted.get("maxRetries", 0)
        return value if isinstance(value, int) and value >= 0 else 0


def fires_by_trigger(specs: Iterable[JobSpec], fire_of: Callable[[BaseTrigger], datetime | None]
                     ) -> dict[uuid.UUID, datetime | None]:
    """``fire_of`` of each spec's trigger, computed once per distinct trigger
    (the next-fire memo): 100,000 daily schedules share a few dozen triggers."""
    memo: dict[str, datetime | None] = {}
    fires: dict[uuid.UUID, datetime | None] = {}
    for spec in specs:
        if spec.trigger_key not in memo:
            memo[spec.trigger_key] = fire_of(spec.trigger)
        fires[spec.schedule_id] = memo[spec.trigger_key]
    return fires


def row_digest():
    """An MD5 of every column a spec is built from, computed by the database
    (Django provides MD5 on SQLite too). The full diff compares these digests
    instead of rebuilding 100,000 specs in Python. One flat JSON object, not a
    long concatenation: SQLite's parser overflows on deeply nested ||."""
    columns = {column.replace("__", "_"): F(column) for column in SPEC_COLUMNS[1:]}
    return MD5(Cast(JSONObject(**columns), output_field=TextField()))


def spec_from_row(row: tuple) -> JobSpec:
    schedule_id, domain, config_id, frequency, time_config, tz, own_settings = row[:7]
    row_hash = row[14] if len(row) > 14 else ""
    settings = Schedule.merged_scan_settings(ScanProfile.scan_settings_of(*row[7:13]), own_settings)
    offset = spread_offset(schedule_id, row[13])
    # The offset is part of the key: a new spread moves the fire times.
    key = trigger_key(frequency, time_config, tz) + (f" +{offset}s" if offset else "")
    content = json.dumps([domain, config_id, settings], sort_keys=True, default=str)
    return JobSpec(
        schedule_id=schedule_id,
        domain=domain,
        domain_config_id=config_id,
        frequency=frequency,
        time_config=time_config,
        timezone=tz,
        scan_settings=settings,
        trigger_key=key,
        content_hash=hashlib.blake2b((key + content).encode(), digest_size=16).hexdigest(),
        row_hash=row_hash,
        offset_seconds=offset,
    )


def iter_specs(queryset: QuerySet[Schedule] | None = None, *, chunk_size: int = 5000) -> Iterator[JobSpec]:
    queryset = Schedule.objects.filter(enabled=True) if queryset is None else queryset
    rows = queryset.order_by().annotate(row_hash=row_digest()).values_list(*SPEC_COLUMNS, "row_hash")
    for row in rows.iterator(chunk_size=chunk_size):
        spec = spec_from_row(row)
        try:
            _ = spec.trigger  # built to validate: raises TimeConfigError
        except TimeConfigError as exc:
            # Stored without validation (a raw UPDATE): never load it, say why.
            logger.error("Schedule %s is not loaded: %s", spec.schedule_id, exc)
            continue
        yield spec


def enabled_digests() -> Iterator[tuple[uuid.UUID, str]]:
    rows = Schedule.objects.filter(enabled=True).order_by().annotate(row_hash=row_digest())
    return rows.values_list("schedule_id", "row_hash").iterator(chunk_size=20000)


def load_spec(schedule_id: uuid.UUID) -> JobSpec | None:
    """The spec of one enabled schedule, or None if it is gone or disabled."""
    return next(iter_specs(Schedule.objects.filter(schedule_id=schedule_id, enabled=True)), None)


@dataclass(frozen=True)
class JobChange:
    action: str  # add | reschedule | refresh | remove
    schedule_id: uuid.UUID
    spec: JobSpec | None


def change_for(current: JobSpec | None, wanted: JobSpec | None) -> JobChange | None:
    if wanted is None:
        return JobChange("remove", current.schedule_id, None) if current is not None else None
    if current is None:
        return JobChange("add", wanted.schedule_id, wanted)
    if current.trigger_key != wanted.trigger_key:
        return JobChange("reschedule", wanted.schedule_id, wanted)
    if current.content_hash != wanted.content_hash:
        return JobChange("refresh", wanted.schedule_id, wanted)
    return None
