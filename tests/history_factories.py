"""Rows of job_executions for tests, written directly (not through services)."""

from datetime import datetime, timedelta, timezone

from history.models import JobExecution

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def make_execution(*, schedule=None, status="success", ago=timedelta(hours=1), duration=None, now=NOW, **fields):
    started = now - ago
    defaults = {
        "job_id": f"schedule:{schedule.schedule_id}" if schedule else "schedule:gone",
        "domain": schedule.domain if schedule else "gone.example.com",
        "domain_config_id": schedule.domain_config_id if schedule else "cfg-gone",
        "started_at": started,
        "completed_at": None if duration is None else started + timedelta(seconds=duration),
        "duration_seconds": duration,
    }
    defaults.update(fields)
    return JobExecution.objects.create(schedule=schedule, status=status, **defaults)


def claim_one(*, schedule_id, domain, domain_config_id, scheduled_for, instance_id, status="queued", started_at=None):
    """One slot claimed through the queue's real INSERT (history.queue.claim_slots); its id, or None if lost."""
    from django.utils import timezone as dj_timezone

    from history.queue import claim_slots

    slot = {"schedule_id": schedule_id, "domain": domain, "domain_config_id": domain_config_id,
            "scheduled_for": scheduled_for, "status": status}
    won = claim_slots(slots=[slot], instance_id=instance_id, started_at=started_at or dj_timezone.now())
    return won.get((schedule_id, scheduled_for))
