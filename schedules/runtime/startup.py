"""Start-up: what a firing instance writes once, after loading its jobs.
The slots missed while no instance ran (the catch-up), and each schedule's next_run.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta, timezone

from django.db import DatabaseError

from history import services as history

from schedules.models import Schedule
from schedules.runtime.finish import update_schedule_columns

logger = logging.getLogger("schedules.runtime")


def write_startup_records(*, instance_id: str, fires: dict[uuid.UUID, datetime | None], grace: float) -> None:
    record_downtime_misses(instance_id=instance_id, grace=grace)
    write_next_runs(fires=fires)
    logger.info("Start-up records written: missed slots and %d next run times", len(fires))


def record_downtime_misses(*, instance_id: str, grace: float) -> None:
    """Slots that passed while no instance ran (beyond the grace time) are
    recorded as missed, so the gap shows in the history."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=grace)
    overdue = Schedule.objects.filter(enabled=True, next_run__lt=cutoff).values_list(
        "schedule_id", "domain", "domain_config_id", "next_run")
    try:
        for schedule_id, domain, config_id, slot in overdue.iterator():
            history.record_unrun_slot(
                schedule_id=schedule_id, domain=domain, domain_config_id=config_id, scheduled_for=slot,
                instance_id=instance_id,
                reason="no scheduler instance was running at this time (this and any later slots until the restart)",
            )
    except DatabaseError as exc:
        logger.warning("Could not record slots missed while stopped: %s", exc)


def next_runs(*, specs: list, now: datetime) -> dict[uuid.UUID, datetime | None]:
    """Each loaded schedule's next_run (Schedule.next_run_after), computed
    once per distinct trigger: 100,000 daily schedules share a few dozen."""
    by_trigger: dict[str, datetime | None] = {}
    fires = {}
    for spec in specs:
        if spec.trigger_key not in by_trigger:
            by_trigger[spec.trigger_key] = Schedule.next_run_after(spec.trigger, now=now)
        fires[spec.schedule_id] = by_trigger[spec.trigger_key]
    return fires


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
