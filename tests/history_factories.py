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
