"""Queue: the one home of the queue's SQL, in the order a slot meets it.
Claim (the row's INSERT), take, heartbeat, fold, requeue, rescue; every other module calls these.

The claim of a slot is the INSERT of its row: the partial unique constraint on
(schedule, scheduled_for) decides which instance runs it, and ON CONFLICT DO
NOTHING keeps the losers out of PostgreSQL's error log. Liveness times
(heartbeat_at) come from the database clock, so instances whose clocks are
skewed still agree on which runs have stopped beating.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from history.models import ExecutionStatus, ExecutionTrigger, JobExecution, schedule_job_id

_INSERT_COLUMNS = (
    "execution_id", "schedule_id", "job_id", "domain", "domain_config_id", "status", "trigger", "scheduled_for",
    "started_at", "completed_at", "scan_id", "error_message", "metadata", "instance_id", "deliveries", "created_at",
    "heartbeat_at",
)


def _db_now_sql() -> str:
    if connection.vendor == "sqlite":
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"
    return "CURRENT_TIMESTAMP"


def _insert_slot_row(*, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row."""
    return bool(_insert_slot_rows(rows=[values]))


def _insert_slot_rows(*, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """One INSERT ... ON CONFLICT DO NOTHING for all the rows; the
    execution ids of those this call inserted (the others' slots were
    claimed already)."""
    if not rows:
        return set()
    fields = {f.column: f for f in JobExecution._meta.concrete_fields}
    one = "(" + ", ".join(["%s"] * (len(_INSERT_COLUMNS) - 1) + [_db_now_sql()]) + ")"
    params = [fields[column].get_db_prep_save(values[column], connection)
              for values in rows for column in _INSERT_COLUMNS[:-1]]
    sql = (
        f"INSERT INTO {JobExecution._meta.db_table} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES {', '.join([one] * len(rows))} ON CONFLICT DO NOTHING RETURNING execution_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {JobExecution._meta.pk.to_python(value) for (value,) in cursor.fetchall()}


CLAIM_BATCH_MAX = 500  # rows per INSERT: far below PostgreSQL's 65,535 parameters


def claim_slots(*, slots: list[dict], instance_id: str, started_at: datetime) -> dict[tuple, uuid.UUID]:
    """Claim slots by inserting their rows, in one INSERT per CLAIM_BATCH_MAX.
    Each slot is a dict of schedule_id, domain, domain_config_id,
    scheduled_for, status (``queued`` for any instance's workers to take, or
    ``running`` when a free worker of the claiming instance takes it at once:
    one write fewer) and metadata. Returns {(schedule_id, scheduled_for): execution_id} of the
    slots this call won; the others were claimed by another instance."""
    rows = [{
        "execution_id": uuid.uuid4(), "job_id": schedule_job_id(slot["schedule_id"]),
        "trigger": ExecutionTrigger.SCHEDULED, "started_at": started_at, "completed_at": None, "scan_id": "",
        "error_message": "", "instance_id": instance_id, "created_at": started_at,
        "deliveries": 1 if slot["status"] == ExecutionStatus.RUNNING else 0,
        **{key: slot[key] for key in ("schedule_id", "domain", "domain_config_id", "scheduled_for", "status")},
        "metadata": {"instance_id": instance_id, **(slot.get("metadata") or {})},
    } for slot in slots]
    won: set[uuid.UUID] = set()
    for start in range(0, len(rows), CLAIM_BATCH_MAX):
        won |= _insert_slot_rows(rows=rows[start:start + CLAIM_BATCH_MAX])
    return {(row["schedule_id"], row["scheduled_for"]): row["execution_id"] for row in rows
            if row["execution_id"] in won}


def claimed_among(slots: list[tuple[uuid.UUID, datetime]]) -> set[tuple[uuid.UUID, datetime]]:
    """Which of these (schedule_id, scheduled_for) slots have a row: claimed, or recorded not run."""
    if not slots:
        return set()
    rows = JobExecution.objects.filter(
        trigger=ExecutionTrigger.SCHEDULED, schedule_id__in={sid for sid, _ in slots},
        scheduled_for__in={slot for _, slot in slots},
    ).values_list("schedule_id", "scheduled_for")
    return set(rows) & set(slots)


def record_unrun_slot(
    *,
    schedule_id: uuid.UUID,
    domain: str,
    domain_config_id: str,
    scheduled_for: datetime,
    instance_id: str,
    reason: str,
    status: str = ExecutionStatus.MISSED,
) -> bool:
    """Record a slot that will not run (missed, or skipped for an overlap),
    unless some instance claimed it."""
    now = timezone.now()
    return _insert_slot_row(
        values={
            "execution_id": uuid.uuid4(),
            "schedule_id": schedule_id,
            "job_id": schedule_job_id(schedule_id),
            "domain": domain,
            "domain_config_id": domain_config_id,
            "status": status,
            "trigger": ExecutionTrigger.SCHEDULED,
            "scheduled_for": scheduled_for,
            "started_at": now,
            "completed_at": now,
            "scan_id": "",
            "error_message": reason,
            "metadata": {"instance_id": instance_id, "reason": reason},
            "instance_id": instance_id,
            "deliveries": 0,
            "created_at": now,
        }
    )


def touch_running(*, execution_ids: list[uuid.UUID], instance_id: str) -> int:
    """Renew the heartbeat of the executions this instance runs (one UPDATE for all)."""
    if not execution_ids:
        return 0
    return JobExecution.objects.filter(
        execution_id__in=execution_ids, instance_id=instance_id, status=ExecutionStatus.RUNNING
    ).update(heartbeat_at=Now())


def rescue_orphaned(*, stale_after: timedelta, max_deliveries: int) -> tuple[int, int]:
    """Running executions whose heartbeat stopped: their instance died (or
    hangs). Each goes back to the queue, at its old place, for any live
    instance to run, until it has been taken ``max_deliveries`` times; then it
    is recorded abandoned (a scan that kills its instance every time must not
    loop). Returns (requeued, abandoned).

    Whether the dead instance's scan had reached the scan API is unknowable,
    so a requeued run is delivered again with the same execution id, sent as
    the Idempotency-Key: the scan API answers a repeat without scanning twice."""
    stale = JobExecution.objects.filter(status=ExecutionStatus.RUNNING, heartbeat_at__lt=Now() - stale_after)
    requeued = stale.filter(deliveries__lt=max_deliveries).update(
        status=ExecutionStatus.QUEUED, instance_id="", started_at=F("created_at"), heartbeat_at=None,
    )
    abandoned = stale.filter(deliveries__gte=max_deliveries).update(
        status=ExecutionStatus.ABANDONED,
        completed_at=Now(),
        error_message=f"The instance running this scan stopped sending heartbeats (killed or hung), "
                      f"{max_deliveries} time(s); it is not run again.",
    )
    return requeued, abandoned


def mark_interrupted(*, execution_ids: list[uuid.UUID], instance_id: str, reason: str) -> int:
    if not execution_ids:
        return 0
    return JobExecution.objects.filter(
        execution_id__in=execution_ids, instance_id=instance_id, status=ExecutionStatus.RUNNING
    ).update(status=ExecutionStatus.INTERRUPTED, completed_at=Now(), error_message=reason)


def has_live_run(*, schedule_id: uuid.UUID, stale_after: timedelta, exclude: uuid.UUID | None = None) -> bool:
    """Is another run of this schedule still going (heartbeat fresh)?"""
    running = JobExecution.objects.filter(
        schedule_id=schedule_id, status=ExecutionStatus.RUNNING, heartbeat_at__gte=Now() - stale_after
    )
    if exclude is not None:
        running = running.exclude(execution_id=exclude)
    return running.exists()


def queue_manual_run(*, schedule_id: uuid.UUID, domain: str, domain_config_id: str, requested_by: str,
                     metadata: dict | None = None) -> uuid.UUID:
    execution = JobExecution.objects.create(
        schedule_id=schedule_id,
        job_id=schedule_job_id(schedule_id),
        domain=domain,
        domain_config_id=domain_config_id,
        status=ExecutionStatus.QUEUED,
        trigger=ExecutionTrigger.MANUAL,
        started_at=timezone.now(),
        metadata={**(metadata or {}), "requested_by": requested_by},
    )
    return execution.execution_id


def fold_queued(*, schedule_ids: list[uuid.UUID], before: datetime, reason: str) -> int:
    """Coalescing: the queued scheduled slots of a schedule older than
    ``before`` are recorded missed, so a schedule never has more than one
    slot waiting. A row back in the queue after its instance died is not
    folded: its scan may have reached the scan API, and delivering it again
    (same Idempotency-Key) just collects that scan's outcome."""
    return JobExecution.objects.filter(
        schedule_id__in=schedule_ids, status=ExecutionStatus.QUEUED, trigger=ExecutionTrigger.SCHEDULED,
        scheduled_for__lt=before, deliveries=0,
    ).update(status=ExecutionStatus.MISSED, completed_at=Now(), error_message=reason)


def take_queued(*, instance_id: str, limit: int, now: datetime | None = None) -> list[dict]:
    """Take up to ``limit`` queued rows for this instance's free workers,
    turning them ``running``: manual runs first ('manual' sorts before
    'scheduled'), then the oldest. PostgreSQL skips rows another instance is
    taking (FOR UPDATE SKIP LOCKED); SQLite serialises writers, and the outer
    ``status = queued`` makes the UPDATE conditional either way."""
    if limit <= 0:
        return []
    table = JobExecution._meta.db_table
    now = now or timezone.now()
    started = JobExecution._meta.get_field("started_at").get_db_prep_save(now, connection)
    pick = f"SELECT execution_id FROM {table} WHERE status = %s ORDER BY trigger, started_at LIMIT %s"
    assign = (f"SET status = %s, instance_id = %s, started_at = %s, heartbeat_at = {_db_now_sql()}, "
              "deliveries = deliveries + 1")
    if connection.vendor == "postgresql":
        # A CTE, not "IN (subquery)": PostgreSQL may run such a subquery once
        # per outer row, and each run would lock and return another row.
        returned = ", ".join(f"{table}.{column}" for column in _TAKEN_COLUMNS)
        sql = (f"WITH picked AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED) UPDATE {table} {assign} "
               f"FROM picked WHERE {table}.execution_id = picked.execution_id AND {table}.status = %s "
               f"RETURNING {returned}")
        params = [ExecutionStatus.QUEUED, limit, ExecutionStatus.RUNNING, instance_id, started, ExecutionStatus.QUEUED]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [dict(zip(_TAKEN_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:  # one round trip per take: this is on every slot's path
            if isinstance(row["metadata"], str):
                row["metadata"] = json.loads(row["metadata"])
        return sorted(rows, key=_queue_order)
    else:
        sql = f"UPDATE {table} {assign} WHERE status = %s AND execution_id IN ({pick}) RETURNING execution_id"
        params = [ExecutionStatus.RUNNING, instance_id, started, ExecutionStatus.QUEUED, ExecutionStatus.QUEUED, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    return sorted(JobExecution.objects.filter(execution_id__in=ids).values(*_TAKEN_COLUMNS), key=_queue_order)


_TAKEN_COLUMNS = ("execution_id", "schedule_id", "scheduled_for", "trigger", "metadata", "started_at", "created_at")


def _queue_order(row: dict) -> tuple:
    return row["trigger"], row["scheduled_for"] or row["created_at"]


def requeue(*, execution_ids: list[uuid.UUID], instance_id: str, started: bool = False,
            max_deliveries: int | None = None) -> int:
    """Give rows this instance took back to the queue at their old place
    (shutdown). A row whose scan never ``started`` was not delivered: its
    count goes back down. A started one (its scan outlasted the shutdown grace
    time) is delivered again, with the same Idempotency-Key, while it has
    deliveries left."""
    if not execution_ids:
        return 0
    rows = JobExecution.objects.filter(
        execution_id__in=execution_ids, instance_id=instance_id, status=ExecutionStatus.RUNNING)
    if max_deliveries is not None:
        rows = rows.filter(deliveries__lt=max_deliveries)
    return rows.update(status=ExecutionStatus.QUEUED, instance_id="", started_at=F("created_at"), heartbeat_at=None,
                       deliveries=F("deliveries") - (0 if started else 1))
