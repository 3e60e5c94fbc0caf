"""Services: a run's outcome written to its row, with its redacted error and its scan changes.
The queue's own SQL (claim, take, requeue, rescue) is in history/queue.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from history import scan_changes
from history.models import ExecutionStatus, JobExecution
from scanner_project.redaction import redact, redact_data


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
    instance_id: str,
) -> bool:
    """Close an execution that ``instance_id`` runs. False, and nothing
    written, when it no longer does: the row was finished, or went back to the
    queue for another instance (rescue_orphaned). The instance may close a row
    marked abandoned meanwhile (its heartbeats could not reach the database
    during an outage): the scan did finish.

    A successful run whose metadata holds a ``scan`` gets ``changes``: its
    cookies against the previous successful scan of its schedule
    (history.scan_changes; one more query, only for such runs)."""
    completed_at = completed_at or timezone.now()
    if status == ExecutionStatus.SUCCESS and isinstance(metadata, dict) and isinstance(metadata.get("scan"), dict):
        previous = scan_changes.previous_successful_scan(execution_id=execution_id, started_at=started_at)
        metadata = {**metadata, "changes": scan_changes.scan_changes(scan=metadata["scan"], previous=previous)}
    changes: dict[str, Any] = {
        "status": status,
        "completed_at": completed_at,
        "duration_seconds": max((completed_at - started_at).total_seconds(), 0.0),
        "scan_id": scan_id or "",
        # The one place a run's error is stored: whatever built it, no secret
        # (a URL's user info, a token in its query) is written.
        "error_message": redact(error_message or ""),
        "error_details": redact_data(error_details),
    }
    if metadata is not None:
        changes["metadata"] = metadata
    # Hand-built rather than QuerySet.update(): this runs once per slot, and
    # compiling the ORM query was a measurable share of a slot's CPU time.
    fields = {name: JobExecution._meta.get_field(name) for name in (*changes, "execution_id", "status")}
    assignments = ", ".join(f"{fields[name].column} = %s" for name in changes)
    params = [fields[name].get_db_prep_save(value, connection) for name, value in changes.items()]
    params += [fields["execution_id"].get_db_prep_save(execution_id, connection), instance_id,
               ExecutionStatus.RUNNING, ExecutionStatus.ABANDONED]
    sql = (f"UPDATE {JobExecution._meta.db_table} SET {assignments} "
           f"WHERE {fields['execution_id'].column} = %s AND instance_id = %s "
           f"AND {fields['status'].column} IN (%s, %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
