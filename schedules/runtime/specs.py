"""What an instance loads for each enabled schedule, and how two loads differ.

A JobSpec is the snapshot of one schedule a running instance works from. Its
``trigger_key`` covers only what moves fire times; ``row_hash`` (the
database's digest of the row) covers the whole snapshot. Comparing the two
tells add / reschedule / refresh / remove apart, so an unrelated edit (a
description) never resets a job's next fire.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

from apscheduler.triggers.base import BaseTrigger
from django.db import connections
from django.db.models import Case, F, Func, QuerySet, TextField, When
from django.db.models.functions import MD5, Cast, JSONObject

from history.models import schedule_job_id
from schedules.models import ScanProfile, Schedule
from schedules.timing.spread import spread_offset
from schedules.timing.triggers import TimeConfigError, trigger_key, trigger_of

logger = logging.getLogger("schedules.runtime.specs")

# The columns a snapshot is built from: one query, no model instances, so a
# full diff of 100,000 schedules stays cheap. A loaded job needs only the
# first group; a run needs the settings too.
JOB_COLUMNS = ("schedule_id", "domain", "domain_config_id", "frequency", "time_config", "timezone", "spread_minutes")
SETTINGS_COLUMNS = ("scan_settings", *(f"profile__{name}" for name in ScanProfile.SETTING_COLUMNS))
SPEC_COLUMNS = (*JOB_COLUMNS, *SETTINGS_COLUMNS)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Slots, not a __dict__: a loaded job's spec is one of a million."""

    schedule_id: uuid.UUID
    domain: str
    domain_config_id: str
    frequency: str
    trigger: BaseTrigger = field(compare=False, repr=False)  # shared by every spec of its trigger_key
    trigger_key: str
    row_hash: str  # the database's digest of the row (see row_digest)
    shard: int = 0
    # The merged scan settings (None in the job table: a slot reads its
    # schedule's current settings when it runs, so no job holds a copy).
    scan_settings: dict | None = None

    @property
    def job_id(self) -> str:
        return schedule_job_id(self.schedule_id)

    @property
    def max_retries(self) -> int:
        wanted = self.scan_settings or {}
        value = wanted.get("maxRetries", 0)
        return value if isinstance(value, int) and value >= 0 else 0


# Triggers are stateless: every spec of one trigger_key shares one (a few
# dozen objects for 100,000 daily schedules, where each job had its own).
# Bounded, for spreads that give every schedule a key of its own.
_TRIGGERS: dict[str, BaseTrigger] = {}
TRIGGERS_SHARED_MAX = 50_000


def _shared_trigger(key: str, frequency: str, time_config: dict, tz: str, offset: int) -> BaseTrigger:
    trigger = _TRIGGERS.get(key)
    if trigger is None:
        trigger = trigger_of(frequency=frequency, time_config=time_config, timezone=tz, offset_seconds=offset)
        if len(_TRIGGERS) < TRIGGERS_SHARED_MAX:
            _TRIGGERS[key] = trigger
    return trigger


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


class FirstFires:
    """Each trigger's first fire at or after a time, kept across loads: for
    any start between one computed start and the fire found for it, the
    answer is that fire (there is none in between). Shards taken one step
    after another, each with its own start, reuse it: a cron trigger's fire
    costs a third of a millisecond, and 1,000,000 daily schedules share 1,440."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[datetime, datetime | None]] = {}

    def at_or_after(self, spec: JobSpec, start: datetime) -> datetime | None:
        known = self._known.get(spec.trigger_key)
        if known is not None and known[0] <= start and (known[1] is None or start <= known[1]):
            return known[1]
        fire = spec.trigger.get_next_fire_time(None, start)
        self._known[spec.trigger_key] = (start, fire)
        return fire


class RowDigest(Func):
    """An MD5 of the columns a loaded job is built from (JOB_COLUMNS: not the
    settings, which a run reads itself), computed by the database. The full
    diff compares these digests instead of rebuilding 100,000 specs in
    Python. On PostgreSQL the columns are joined with a separator no domain,
    id or zone name can hold: a third of the cost of hashing a JSON object
    (the load of 250,000 rows spent most of its database time on it). SQLite
    hashes one flat JSON object (Django provides MD5 there): its parser
    overflows on a long nested concatenation."""

    output_field = TextField()

    def __init__(self):
        super().__init__(*(F(column) for column in JOB_COLUMNS[1:]))

    def as_postgresql(self, compiler, connection, **extra):
        columns = [compiler.compile(Cast(expression, TextField())) for expression in self.get_source_expressions()]
        sql = "MD5(CONCAT_WS(CHR(31), %s))" % ", ".join(part for part, _ in columns)
        return sql, [param for _, params in columns for param in params]

    def as_sql(self, compiler, connection, **extra):
        columns = dict(zip(JOB_COLUMNS[1:], self.get_source_expressions(), strict=True))
        return compiler.compile(MD5(Cast(JSONObject(**columns), output_field=TextField())))


def row_digest() -> RowDigest:
    return RowDigest()


# The time config arrives as the database's JSON text; its canonical key is
# worked out once per distinct text (a few thousand for a million schedules).
_KEYS: dict[tuple[str, str, str], tuple[str, dict]] = {}


def _job_key(frequency: str, time_config_text: str, tz: str) -> tuple[str, dict]:
    raw = (frequency, time_config_text, tz)
    known = _KEYS.get(raw)
    if known is None:
        time_config = json.loads(time_config_text)
        known = (trigger_key(frequency, time_config, tz), time_config)
        if len(_KEYS) < TRIGGERS_SHARED_MAX:
            _KEYS[raw] = known
    return known


def spec_from_row(row: tuple, *, keep_settings: bool = True) -> JobSpec:
    """The spec of one row of ``_rows``: JOB_COLUMNS (the time config as
    text), the row digest, the shard, then SETTINGS_COLUMNS if
    ``keep_settings``. Raises TimeConfigError for a time config stored
    without validation."""
    schedule_id, domain, config_id, frequency, time_config_text, tz, spread_minutes, row_hash, shard = row[:9]
    canonical, time_config = _job_key(frequency, time_config_text, tz)
    settings = _merged_settings(row[9:9 + len(SETTINGS_COLUMNS)]) if keep_settings else None
    return _spec(schedule_id, domain, config_id, frequency, canonical, time_config, tz, spread_minutes, row_hash,
                 shard, settings)


def _merged_settings(columns: tuple) -> dict:
    own_settings, *profile_settings = columns
    return Schedule.merged_scan_settings(ScanProfile.scan_settings_of(*profile_settings), own_settings)


def _spec(schedule_id: uuid.UUID, domain: str, config_id: str, frequency: str, canonical_key: str, time_config: dict,
          tz: str, spread_minutes: int | None, row_hash: str, shard: int, settings: dict | None) -> JobSpec:
    offset = spread_offset(schedule_id, spread_minutes)
    # The offset is part of the key: a new spread moves the fire times.
    key = sys.intern(canonical_key + (f" +{offset}s" if offset else ""))
    return JobSpec(
        schedule_id=schedule_id,
        domain=domain,
        domain_config_id=config_id,
        frequency=sys.intern(frequency),
        trigger=_shared_trigger(key, frequency, time_config, tz, offset),
        trigger_key=key,
        row_hash=row_hash,
        shard=shard,
        scan_settings=settings,
    )


def _rows(queryset: QuerySet[Schedule], *, keep_settings: bool, extra: dict | None = None):
    """``extra``: more annotations, appended to each row."""
    extra = extra or {}
    columns = (*JOB_COLUMNS, "row_hash", "shard", *(SETTINGS_COLUMNS if keep_settings else ()), *extra)
    columns = tuple("time_config_text" if c == "time_config" else c for c in columns)
    return (queryset.order_by().annotate(row_hash=row_digest(), time_config_text=Cast("time_config", TextField()),
                                         **extra).values_list(*columns))


def _valid_specs(rows, *, keep_settings: bool) -> Iterator[tuple[JobSpec, tuple]]:
    for row in rows:
        try:
            yield spec_from_row(row, keep_settings=keep_settings), row
        except TimeConfigError as exc:
            # Stored without validation (a raw UPDATE): never load it, say why.
            logger.error("Schedule %s is not loaded: %s", row[0], exc)


def iter_specs(queryset: QuerySet[Schedule] | None = None, *, chunk_size: int = 5000,
               keep_settings: bool = True) -> Iterator[JobSpec]:
    queryset = Schedule.objects.filter(enabled=True) if queryset is None else queryset
    rows = _rows(queryset, keep_settings=keep_settings).iterator(chunk_size=chunk_size)
    for spec, _ in _valid_specs(rows, keep_settings=keep_settings):
        yield spec


def specs_to_load(*, shards: list[int], created_after: datetime,
                  chunk_size: int = 5000) -> Iterator[tuple[JobSpec, datetime | None]]:
    """The enabled schedules of these shards as the job table holds them (no
    scan settings), each with its creation time if after ``created_after``
    (no catch-up before it; None for the others, most of them)."""
    recent = Case(When(created_at__gt=created_after, then=F("created_at")), default=None)
    rows = _rows(Schedule.objects.filter(enabled=True, shard__in=shards), keep_settings=False,
                 extra={"created_recently": recent})
    for spec, row in _valid_specs(rows.iterator(chunk_size=chunk_size), keep_settings=False):
        yield spec, row[-1]


def enabled_digests(*, shards: list[int] | None = None) -> Iterator[tuple[uuid.UUID, str]]:
    """(id, row digest) of every enabled schedule, of these shards (None: all)."""
    rows = Schedule.objects.filter(enabled=True)
    if shards is not None:
        rows = rows.filter(shard__in=shards)
    rows = rows.order_by().annotate(row_hash=row_digest())
    return rows.values_list("schedule_id", "row_hash").iterator(chunk_size=20000)


def load_spec(schedule_id: uuid.UUID) -> JobSpec | None:
    """The spec of one enabled schedule, settings included, or None if it is
    gone or disabled: what a run reads when its slot runs."""
    return load_specs([schedule_id]).get(schedule_id)


# A run's read, compiled once per number of ids: Django compiles a query
# anew each time, and for this one (a join, 14 columns) that cost a no-op
# slot more than the rest of its path (1.3 ms of CPU against 0.3 ms).
_RUN_QUERIES: dict[tuple[str, int], tuple[str, list, int, object, list]] = {}
RUN_QUERY_IDS_MAX = 64


def _run_rows(schedule_ids: list[uuid.UUID]) -> list[tuple]:
    ids = list(dict.fromkeys(schedule_ids))
    if not ids:
        return []
    if len(ids) > RUN_QUERY_IDS_MAX:
        return [row for start in range(0, len(ids), RUN_QUERY_IDS_MAX)
                for row in _run_rows(ids[start:start + RUN_QUERY_IDS_MAX])]
    connection = connections[Schedule.objects.db]
    key = (connection.alias, len(ids))
    compiled = _RUN_QUERIES.get(key)
    if compiled is None:
        placeholders = [uuid.UUID(int=n + 1) for n in range(len(ids))]
        query = (Schedule.objects.filter(schedule_id__in=placeholders, enabled=True).order_by()
                 .values_list(*JOB_COLUMNS, "shard", *SETTINGS_COLUMNS)).query
        compiler = query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        prepared = [Schedule._meta.pk.get_db_prep_value(p, connection) for p in placeholders]
        params = list(params)
        first = next(n for n in range(len(params)) if params[n:n + len(prepared)] == prepared)
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        compiled = (sql, list(params), first, compiler, converters)
        _RUN_QUERIES[key] = compiled
    sql, params, first, compiler, converters = compiled
    params = list(params)
    params[first:first + len(ids)] = [Schedule._meta.pk.get_db_prep_value(i, connection) for i in ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return list(compiler.apply_converters(rows, converters)) if converters else rows


def load_specs(schedule_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobSpec]:
    """The specs of these schedules that are enabled, settings included, in
    one query: the slots a claim or a take starts together read them at
    once. No digest (a run needs none) and no casts."""
    specs = {}
    for row in _run_rows(schedule_ids):
        schedule_id, domain, config_id, frequency, time_config, tz, spread_minutes, shard = row[:8]
        try:
            specs[schedule_id] = _spec(schedule_id, domain, config_id, frequency,
                                       trigger_key(frequency, time_config, tz), time_config, tz, spread_minutes, "",
                                       shard, _merged_settings(row[8:]))
        except TimeConfigError as exc:
            logger.error("Schedule %s is not loaded: %s", schedule_id, exc)
    return specs


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
    if current.row_hash != wanted.row_hash:
        return JobChange("refresh", wanted.schedule_id, wanted)
    return None
