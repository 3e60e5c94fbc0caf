"""Finish: a run's outcome goes to its row (retried through an outage), then to its schedule.
last_run, last_status and next_run are noted per run and flushed in one UPDATE per batch.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import DatabaseError, transaction

from history import services as history
from history.models import ExecutionStatus
from scanner_project import metrics

from schedules.models import Schedule

if TYPE_CHECKING:
    from schedules.runtime.specs import JobSpec
    from schedules.runtime.context import RunContext

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
        params = [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row)] for row in rows]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def finish(ctx: RunContext, spec: JobSpec, execution_id, status, started_at, **fields) -> None:
    completed_at = ctx.clock()
    for attempt in range(20):
        try:
            written = history.finish_execution(execution_id=execution_id, status=status, started_at=started_at,
                                               completed_at=completed_at, instance_id=ctx.instance_id, **fields)
            if written:
                ctx.bookkeeping.note(schedule_id=spec.schedule_id, last_run=started_at, last_status=status,
                                     next_run=_next_run(spec, ctx.clock()))
            break
        except DatabaseError as exc:
            # The scan is done; losing its record would hide it. Keep trying a
            # while (the row stays `running` and is marked abandoned otherwise).
            ctx.db_outage.down(exc, "finished runs are recorded when it returns")
            from schedules.runtime.context import repair_connections

            repair_connections()
            if ctx.stop.wait(min(0.5 * 2**attempt, 5.0)) and attempt > 3:
                return
    metrics.EXECUTIONS.labels(status=status, trigger=fields.get("metadata", {}).get("trigger", "scheduled")).inc()
    if status in (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED):
        metrics.EXECUTION_DURATION.observe(max((completed_at - started_at).total_seconds(), 0.0))


def _next_run(spec: JobSpec, now: datetime) -> datetime | None:
    return Schedule.next_run_after(spec.trigger, now=now)


def sweep_abandoned(ctx: RunContext, *, heartbeat_interval: float) -> None:
    """Running rows whose heartbeat stopped (their instance died) go back to
    the queue, or are recorded abandoned once out of deliveries."""
    if ctx.db_outage.recovered_within(heartbeat_interval * 2):
        return  # every heartbeat is stale right after an outage; let them renew first
    requeued, abandoned = history.rescue_orphaned(stale_after=ctx.stale_after, max_deliveries=ctx.max_deliveries)
    if requeued:
        logger.warning("Put %d run(s) back in the queue: their instance stopped sending heartbeats", requeued)
        ctx.queue_wake.set()
    if abandoned:
        logger.warning("Marked %d execution(s) abandoned: their instances stopped sending heartbeats %d times",
                       abandoned, ctx.max_deliveries)
