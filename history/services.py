"""Writes to the execution history, as the scheduler runtime makes them.

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
from django.db.models.functions import Now
from django.utils import timezone

from .models import ExecutionStatus, ExecutionTrigger, JobExecution

_INSERT_COLUMNS = (
    "execution_id", "schedule_id", "job_id", "domain", "domain_config_id", "status", "trigger", "scheduled_for",
    "started_at", "completed_at", "scan_id", "error_message", "metadata", "instance_id", "created_at", "heartbeat_at",
)


def _db_now_sql() -> str:
    if connection.vendor == "sqlite":
        return "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"
    return "CURRENT_TIMESTAMP"


def _insert_slot_row(*, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row."""
    fields = {f.column: f for f in JobExecution._meta.concrete_fields}
    params = [fields[column].get_db_prep_save(values[column], connection) for column in _INSERT_COLUMNS[:-1]]
    placeholders = ", ".join(["%s"] * (len(_INSERT_COLUMNS) - 1) + [_db_now_sql()])
    sql = (
        f"INSERT INTO {JobExecution._meta.db_table} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def claim_slot(
    *,
    schedule_id: uuid.UUID,
    domain: str,
    domain_config_id: str,
    scheduled_for: datetime,
    instance_id: str,
    started_at: datetime | None = None,
    metadata: dict | None = None,
    status: str = ExecutionStatus.QUEUED,
) -> uuid.UUID | None:
    """Insert the row of a slot, ``queued`` for any instance's workers to take
    (see take_queued). Returns its id, or None when another instance claimed
    the slot first."""
    execution_id = uuid.uuid4()
    now = started_at or timezone.now()
    won = _insert_slot_row(
        values={
            "execution_id": execution_id,
            "schedule_id": schedule_id,
            "job_id": f"schedule:{schedule_id}",
            "domain": domain,
            "domain_config_id": domain_config_id,
            "status": status,
            "trigger": ExecutionTrigger.SCHEDULED,
            "scheduled_for": scheduled_for,
            "started_at": now,
            "completed_at": None,
            "scan_id": "",
            "error_message": "",
            "metadata": {"instance_id": instance_id, **(metadata or {})},
            "instance_id": instance_id,
            "created_at": now,
        }
    )
    return execution_id if won else None


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
            "job_id": f"schedule:{schedule_id}",
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
            "created_at": now,
        }
    )


def finish_execution(
    *,
    execution_id: uuid.UUID,
    status: str,
    started_at: datetime,
    completed_at: datetime | None = None,
    scan_id: str = "",
    error_message: str = "",
    error_details: dict | None = None,
    metadata: dict | None = None,
    instance_id: str | None = None,
) -> bool:
    """Close a running execution. False if it was no longer running, in which
    case nothing is written. ``instance_id`` also lets the instance that ran it
    close a row that was marked abandoned meanwhile (its heartbeats could not
    reach the database during an outage): the scan did finish."""
    completed_at = completed_at or timezone.now()
    changes: dict[str, Any] = {
        "status": status,
        "completed_at": completed_at,
        "duration_seconds": max((completed_at - started_at).total_seconds(), 0.0),
        "scan_id": scan_id or "",
        "error_message": error_message or "",
        "error_details": error_details,
    }
    if metadata is not None:
        changes["metadata"] = metadata
    # Hand-built rather than QuerySet.update(): this runs once per slot, and
    # compiling the ORM query was a measurable share of a slot's CPU time.
    fields = {name: JobExecution._meta.get_field(name) for name in (*changes, "execution_id", "status")}
    assignments = ", ".join(f"{fields[name].column} = %s" for name in changes)
    params = [fields[name].get_db_prep_save(value, connection) for name, value in changes.items()]
    params += [fields["execution_id"].get_db_prep_save(execution_id, connection), ExecutionStatus.RUNNING,
               ExecutionStatus.ABANDONED, instance_id or ""]
    sql = (f"UPDATE {JobExecution._meta.db_table} SET {assignments} "
           f"WHERE {fields['execution_id'].column} = %s AND ({fields['status'].column} = %s "
           f"OR ({fields['status'].column} = %s AND instance_id = %s))")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def touch_running(*, execution_ids: list[uuid.UUID]) -> int:
    """Renew the heartbeat of running executions (one UPDATE for all)."""
    if not execution_ids:
        return 0
    return JobExecution.objects.filter(execution_id__in=execution_ids, status=ExecutionStatus.RUNNING).update(
        heartbeat_at=Now()
    )


def mark_abandoned(*, stale_after: timedelta) -> int:
    """Running executions whose heartbeat stopped: their instance died."""
    return JobExecution.objects.filter(
        status=ExecutionStatus.RUNNING, heartbeat_at__lt=Now() - stale_after
    ).update(
        status=ExecutionStatus.ABANDONED,
        completed_at=Now(),
        error_message="The instance running this scan stopped sending heartbeats (killed or hung).",
    )


def mark_interrupted(*, execution_ids: list[uuid.UUID], reason: str) -> int:
    if not execution_ids:
        return 0
    return JobExecution.objects.filter(execution_id__in=execution_ids, status=ExecutionStatus.RUNNING).update(
        status=ExecutionStatus.INTERRUPTED, completed_at=Now(), error_message=reason
    )


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
        job_id=f"schedule:{schedule_id}",
        domain=domain,
        domain_config_id=domain_config_id,
        status=ExecutionStatus.QUEUED,
        trigger=ExecutionTrigger.MANUAL,
        started_at=timezone.now(),
        metadata={**(metadata or {}), "requested_by": requested_by},
    )
    return execution.execution_id


def fold_queued(*, schedule_id: uuid.UUID, before: datetime, reason: str) -> int:
    """Coalescing: the queued scheduled slots of a schedule older than
    ``before`` are recorded missed, so a schedule never has more than one
    slot waiting."""
    return JobExecution.objects.filter(
        schedule_id=schedule_id, status=ExecutionStatus.QUEUED, trigger=ExecutionTrigger.SCHEDULED,
        scheduled_for__lt=before,
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
    assign = f"SET status = %s, instance_id = %s, started_at = %s, heartbeat_at = {_db_now_sql()}"
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
            rows = [dict(zip(_TAKEN_COLUMNS, row)) for row in cursor.fetchall()]
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


def requeue(*, execution_ids: list[uuid.UUID]) -> int:
    """Give taken rows whose scan never started back to the queue (shutdown)."""
    if not execution_ids:
        return 0
    return JobExecution.objects.filter(execution_id__in=execution_ids, status=ExecutionStatus.RUNNING).update(
        status=ExecutionStatus.QUEUED, instance_id=""
    )
