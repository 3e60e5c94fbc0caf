"""What an instance loads for each enabled schedule, and how two loads differ.

A JobSpec is the snapshot of one schedule a running instance works from. Its
``trigger_key`` covers only what moves fire times; ``content_hash`` covers the
whole snapshot. Comparing the two tells add / reschedule / refresh / remove
apart, so an unrelated edit (a description) never resets a job's next fire.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Iterable, Iterator

from django.db.models import QuerySet

from .models import Schedule

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
    "profile__max_pages",
    "profile__scan_depth",
    "profile__max_retries",
    "profile__allow_deep_scan",
    "profile__custom_pages",
    "profile__accept_selector",
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

    @property
    def job_id(self) -> str:
        return f"schedule:{self.schedule_id}"

    @property
    def max_retries(self) -> int:
        value = self.scan_settings.get("maxRetries", 0)
        return value if isinstance(value, int) and value >= 0 else 0


def _profile_settings(row: tuple) -> dict:
    max_pages, depth, retries, deep, pages, selector = row[7:13]
    if max_pages is None:  # no profile
        return {}
    return {
        "maxPages": max_pages,
        "scanDepth": depth,
        "maxRetries": retries,
        "allow_deep_scan": deep,
        "customPages": list(pages or []),
        "accept_selector": selector,
    }


def spec_from_row(row: tuple) -> JobSpec:
    schedule_id, domain, config_id, frequency, time_config, tz, own_settings = row[:7]
    settings = _profile_settings(row)
    settings.update(own_settings or {})
    trigger_key = json.dumps([frequency, time_config, tz], sort_keys=True)
    content = json.dumps([domain, config_id, settings], sort_keys=True, default=str)
    return JobSpec(
        schedule_id=schedule_id,
        domain=domain,
        domain_config_id=config_id,
        frequency=frequency,
        time_config=time_config,
        timezone=tz,
        scan_settings=settings,
        trigger_key=trigger_key,
        content_hash=hashlib.blake2b((trigger_key + content).encode(), digest_size=16).hexdigest(),
    )


def iter_specs(queryset: QuerySet[Schedule] | None = None, *, chunk_size: int = 5000) -> Iterator[JobSpec]:
    queryset = Schedule.objects.filter(enabled=True) if queryset is None else queryset
    for row in queryset.order_by().values_list(*SPEC_COLUMNS).iterator(chunk_size=chunk_size):
        yield spec_from_row(row)


def load_spec(schedule_id: uuid.UUID) -> JobSpec | None:
    """The spec of one enabled schedule, or None if it is gone or disabled."""
    return next(iter_specs(Schedule.objects.filter(schedule_id=schedule_id, enabled=True)), None)


@dataclass(frozen=True)
class JobChange:
    action: str  # add | reschedule | refresh | remove
    schedule_id: uuid.UUID
    spec: JobSpec | None


def diff_specs(loaded: dict[uuid.UUID, JobSpec], wanted: Iterable[JobSpec]) -> list[JobChange]:
    """What turns the loaded jobs into the wanted ones."""
    changes: list[JobChange] = []
    seen: set[uuid.UUID] = set()
    for spec in wanted:
        seen.add(spec.schedule_id)
        change = change_for(loaded.get(spec.schedule_id), spec)
        if change is not None:
            changes.append(change)
    changes.extend(JobChange("remove", sid, None) for sid in loaded.keys() - seen)
    return changes


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
