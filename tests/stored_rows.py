"""Stored data for the bad-input tests: a known set of rows and a snapshot of all of them.

A bad input must change nothing: every row of schedules, scan_profiles and
job_executions (every column, as PostgreSQL returns it) is compared before and after.
"""

from datetime import timedelta

import pytest
from django.db import connection

from schedules.models import ScanProfile, Schedule
from tests.history_factories import make_execution

TABLES = ("schedules", "scan_profiles", "job_executions")


def snapshot() -> dict[str, list[tuple]]:
    rows = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 - fixed table names
            rows[table] = cursor.fetchall()
    return rows


@pytest.fixture
def stored(db):
    """Two profiles, two schedules (one weekly, edited by hand) and an old execution
    that a wrongly accepted cleanup would delete. Returns the rows by name."""
    profile = ScanProfile.objects.create(name="standard", max_pages=20, custom_pages=["/privacy"])
    ScanProfile.objects.create(name="deep", max_pages=200, allow_deep_scan=True)
    rows = {"profile": profile}
    for key, fields in {
        "a": {"domain_config_id": "cfg-a", "domain": "a.example.com", "frequency": "daily",
              "time_config": {"hour": 2, "minute": 0}, "profile": profile, "scan_settings": {"maxPages": 10}},
        "b": {"domain_config_id": "cfg-b", "domain": "b.example.com", "frequency": "weekly",
              "time_config": {"day": "monday", "hour": 3, "minute": 30}, "timezone": "Europe/Berlin",
              "edited_manually": True},
    }.items():
        schedule = Schedule(**fields)
        schedule.full_clean()
        schedule.save()
        rows[key] = schedule
    make_execution(schedule=rows["a"], status="success", ago=timedelta(days=400), duration=1.0)
    rows["snapshot"] = snapshot()
    return rows
