"""Each schedule's last_run, last_status and next_run, written in batches.

These columns are a convenience for admin lists; the history rows are the
record. Writing them per run would cost one more database round trip per
slot, so runs note them here and the main loop flushes them in one UPDATE.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime

from django.db import transaction

from .models import Schedule


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
    fields = [Schedule._meta.get_field(name) for name in (*columns, "schedule_id")]
    assignments = ", ".join(f"{f.column} = %s" for f in fields[:-1])
    sql = f"UPDATE {Schedule._meta.db_table} SET {assignments} WHERE {fields[-1].column} = %s"
    with transaction.atomic():
        connection = transaction.get_connection()
        params = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row)] for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
