"""Bookkeeping: what a run or an unrun slot leaves on the schedule and in the history.
A schedule's last_run, last_status and next_run are noted per run and flushed in one UPDATE per batch.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime

from django.db import DatabaseError, transaction

from history import queue as queue_store
from history.models import ExecutionStatus
from schedules.models import Schedule
from schedules.runtime.outages import OutageLog

logger = logging.getLogger("schedules.runtime")


class ScheduleBookkeeping:
    def __init__(self) -> None:
        self._pending: dict[uuid.UUID, tuple[datetime, str, datetime | None]] = {}
        self._mutex = threading.Lock()

    def note(self, *, schedule_id: uuid.UUID, last_run: datetime, last_status: str, next_run: datetime | None) -> None:
        with self._mutex:
            self._pending[schedule_id] = (last_run, last_status, next_run)

    def flush(self) -> int:
        with self._mutex:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            _write(pending)
        except Exception:
            with self._mutex:  # keep what was not written; newer notes win
                self._pending = {**pending, **self._pending}
            raise
        return len(pending)


def _write(pending: dict) -> None:
    update_schedule_columns(
        columns=("last_run", "last_status", "next_run"),
        rows=[(run, status, next_run, sid) for sid, (run, status, next_run) in pending.items()],
    )


def update_schedule_columns(*, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """UPDATE the given columns of many schedules; each row is the column
    values followed by the schedule_id.

    One statement, many parameter sets: psycopg 3 pipelines executemany into a
    single round trip, and no CASE expression has to be compiled (the CPU cost
    of bulk_update for hundreds or thousands of rows).
    """
    if not rows:
        return
    # In schedule_id order: every writer (the bookkeeping of each instance,
    # start-up) then locks rows in one order, so two never deadlock.
    rows = sorted(rows, key=lambda row: str(row[-1]))
    fields = [Schedule._meta.get_field(name) for name in (*columns, "schedule_id")]
    assignments = ", ".join(f"{f.column} = %s" for f in fields[:-1])
    sql = f"UPDATE {Schedule._meta.db_table} SET {assignments} WHERE {fields[-1].column} = %s"
    with transaction.atomic():
        connection = transaction.get_connection()
        params = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)] for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def record_not_run(*, schedule_id: uuid.UUID, domain: str, domain_config_id: str, scheduled_for: datetime,
                   reason: str, instance_id: str, status: str = ExecutionStatus.MISSED,
                   outage: OutageLog | None = None, log: bool = True) -> bool:
    """The one way a slot that will not run is recorded (missed past its grace
    time, coalesced, skipped for an overlap, or passed while no instance ran),
    so every gap shows in the history. Nothing is written when an instance
    claimed the slot after all. A database outage is reported to ``outage``
    (the slot is then only logged) or, without one, raised."""
    if log:
        logger.warning("Slot %s of schedule %s not run: %s", scheduled_for, schedule_id, reason)
    try:
        return queue_store.record_unrun_slot(
            schedule_id=schedule_id, domain=domain, domain_config_id=domain_config_id, scheduled_for=scheduled_for,
            instance_id=instance_id, reason=reason, status=status)
    except DatabaseError as exc:
        if outage is None:
            raise
        outage.down(exc, "slots that are not run are only logged")
        return False
