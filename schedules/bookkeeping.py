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
    # One statement, many parameter sets: psycopg 3 pipelines executemany into
    # a single round trip, and no CASE expression has to be compiled (the CPU
    # cost of bulk_update for a few hundred rows).
    fields = [Schedule._meta.get_field(name) for name in ("last_run", "last_status", "next_run", "schedule_id")]
    sql = (f"UPDATE {Schedule._meta.db_table} SET {fields[0].column} = %s, {fields[1].column} = %s, "
           f"{fields[2].column} = %s WHERE {fields[3].column} = %s")
    with transaction.atomic():
        connection = transaction.get_connection()
        params = [
            [f.get_db_prep_save(v, connection) for f, v in zip(fields, (run, status, next_run, sid))]
            for sid, (run, status, next_run) in pending.items()
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
