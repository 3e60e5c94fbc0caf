"""Writes to the execution history, as the scheduler runtime makes them.

The claim of a slot is the INSERT of its row: the partial unique constraint on
(schedule, scheduled_for) decides which instance runs it, and ON CONFLICT DO
NOTHING keeps the losers out of PostgreSQL's error log. Liveness times
(heartbeat_at) come from the database clock, so instances whose clocks are
skewed still agree on which runs have stopped beating.
"""

from __future__ import annotations

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
) -> uuid.UUID | None:
    """Insert the ``running`` row of a slot. Returns its id, or None when
    another instance claimed the slot first."""
    execution_id = uuid.uuid4()
    now = started_at or timezone.now()
    won = _insert_slot_row(
        values={
            "execution_id": execution_id,
            "schedule_id": schedule_id,
            "job_id": f"schedule:{schedule_id}",
            "domain": domain,
            "domain_config_id": domain_config_id,
            "status": ExecutionStatus.RUNNING,
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


def claim_queued_runs(*, instance_id: str, limit: int) -> list[JobExecution]:
    """Take queued manual runs with a conditional UPDATE per row: of several
    instances, exactly one changes a row from queued to running."""
    claimed = []
    candidates = JobExecution.objects.filter(status=ExecutionStatus.QUEUED).order_by("created_at")
    for execution_id in candidates.values_list("execution_id", flat=True)[:limit]:
        now = timezone.now()
        won = JobExecution.objects.filter(execution_id=execution_id, status=ExecutionStatus.QUEUED).update(
            status=ExecutionStatus.RUNNING, instance_id=instance_id, started_at=now, heartbeat_at=Now(),
            metadata=_with_instance(execution_id, instance_id),
        )
        if won:
            claimed.append(JobExecution.objects.get(execution_id=execution_id))
    return claimed


def _with_instance(execution_id: uuid.UUID, instance_id: str) -> dict:
    metadata = JobExecution.objects.filter(execution_id=execution_id).values_list("metadata", flat=True).first()
    return {**(metadata or {}), "instance_id": instance_id}
