from __future__ import annotations

import uuid
from datetime import datetime

from django.db import connection

from .models import SchedulePause

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
