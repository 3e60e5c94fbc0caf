from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from pauses.models import SchedulePause

# A pause holds a slot when it began by then, was not resumed by hand by then
# and had not reached its own resume time. One plain statement: it runs for
# every slot, and building it with the ORM cost more than the query (bench_slots
# fell from ~470 to ~250 slots/s; with this statement it is back).
_COVERING_SQL = (
    f"SELECT reason, paused_by, resume_at FROM {SchedulePause._meta.db_table} "
    "WHERE schedule_id = %s AND paused_at <= %s AND (resumed_at IS NULL OR resumed_at > %s) "
    "AND (resume_at IS NULL OR resume_at > %s) ORDER BY paused_at DESC LIMIT 1"
)


def paused_reason(*, schedule_id: uuid.UUID, at: datetime) -> str:
    """Why the schedule's slot at ``at`` is held by a pause, or "" when it is not."""
    field = SchedulePause._meta.get_field("paused_at")
    moment = field.get_db_prep_value(at, connection)
    pk = SchedulePause._meta.get_field("schedule").target_field.get_db_prep_value(schedule_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_COVERING_SQL, [pk, moment, moment, moment])
        row = cursor.fetchone()
    if row is None:
        return ""
    reason, paused_by, resume_at = row
    if resume_at is not None and isinstance(resume_at, str):  # SQLite answers in text
        resume_at = field.to_python(resume_at)
    until = f" until {resume_at.isoformat(timespec='seconds')}" if resume_at else ""
    return f"paused by {paused_by}{until}: {reason}"


# A pause resumed more than this long ago can only hold slots older than
# that; a snapshot leaves such slots to paused_reason().
SNAPSHOT_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class PauseSnapshot:
    """The schedules any pause could hold a slot of, as the database saw them
    at ``taken_at`` (its clock). A scheduler refreshes it every
    CHANGE_POLL_INTERVAL, so that the slots of the schedules that were never
    paused (nearly all) cost no query; a pause reaches the runtime like any edit."""

    taken_at: datetime
    schedule_ids: frozenset

    def may_hold(self, *, schedule_id: uuid.UUID, at: datetime) -> bool:
        """False only when no pause can hold this slot: then paused_reason() is ""."""
        return at < self.taken_at - SNAPSHOT_LOOKBACK or schedule_id in self.schedule_ids


def pause_snapshot(*, now: datetime) -> PauseSnapshot:
    """``now``: the database's time as the caller knows it, taken before the query."""
    # Open pauses, and those resumed within the lookback (a slot from before
    # its resume_at or resumed_at is still held).
    table = SchedulePause._meta.db_table
    since = SchedulePause._meta.get_field("resumed_at").get_db_prep_value(now - SNAPSHOT_LOOKBACK, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT schedule_id FROM {table} WHERE resumed_at IS NULL OR resumed_at > %s",
                       [since])
        schedule_pk = SchedulePause._meta.get_field("schedule").target_field
        ids = frozenset(schedule_pk.to_python(row[0]) for row in cursor.fetchall())
    return PauseSnapshot(taken_at=now, schedule_ids=ids)

