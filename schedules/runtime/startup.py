"""Start-up: what a firing instance writes once, after loading its jobs.
The slots missed while no instance ran (the catch-up), and each schedule's next_run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import DatabaseError

from schedules.models import Schedule
from schedules.runtime.bookkeeping import record_not_run, update_schedule_columns
from schedules.runtime.specs import JobSpec, fires_by_trigger

logger = logging.getLogger("schedules.runtime")

DOWNTIME_REASON = "no scheduler instance was running at this time (this and any later slots until the restart)"


def write_startup_records(*, instance_id: str, fires: dict[uuid.UUID, datetime | None], grace: float,
                          now: datetime) -> None:
    record_downtime_misses(instance_id=instance_id, grace=grace, now=now)
    write_next_runs(fires=fires)
    logger.info("Start-up records written: missed slots and %d next run times", len(fires))


def record_downtime_misses(*, instance_id: str, grace: float, now: datetime) -> int:
    """Slots that passed while no instance ran (beyond the grace time) are
    recorded as missed, so the gap shows in the history."""
    cutoff = now - timedelta(seconds=grace)
    overdue = Schedule.objects.filter(enabled=True, next_run__lt=cutoff).values_list(
        "schedule_id", "domain", "domain_config_id", "next_run")
    recorded = 0
    try:
        for schedule_id, domain, config_id, slot in overdue.iterator():
            recorded += record_not_run(schedule_id=schedule_id, domain=domain, domain_config_id=config_id,
                                       scheduled_for=slot, instance_id=instance_id, reason=DOWNTIME_REASON, log=False)
    except DatabaseError as exc:
        logger.warning("Could not record slots missed while stopped: %s", exc)
    if recorded:
        logger.warning("Recorded %d slot(s) missed while no scheduler instance was running", recorded)
    return recorded


def next_runs(*, specs: list[JobSpec], now: datetime) -> dict[uuid.UUID, datetime | None]:
    """Each loaded schedule's next_run (Schedule.next_run_after)."""
    return fires_by_trigger(specs, lambda trigger: Schedule.next_run_after(trigger, now=now))


def write_next_runs(*, fires: dict[uuid.UUID, datetime | None]) -> None:
    """Store each loaded schedule's next fire time, writing only the rows
    whose stored value differs (so N instances starting cost one write)."""
    try:
        stored = dict(Schedule.objects.filter(enabled=True).values_list("schedule_id", "next_run"))
        update_schedule_columns(
            columns=("next_run",),
            rows=[(fire, sid) for sid, fire in fires.items() if sid in stored and stored[sid] != fire],
        )
    except DatabaseError as exc:
        logger.warning("Could not write next_run: %s", exc)
