from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from history import statistics
from history.job_history import get_job_history
from tests.history_factories import NOW, make_execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def known_week(make_schedule):
    """Inside the last 7 days: 3 success (10, 20, 60 s), 1 failed (5 s),
    1 missed (no duration), 1 running (not finished). Outside: 2 old ones."""
    a, b = make_schedule(domain="a.example.com"), make_schedule(domain="b.example.com")
    make_execution(schedule=a, status="success", duration=10, ago=timedelta(hours=1))
    make_execution(schedule=a, status="success", duration=20, ago=timedelta(days=2))
    make_execution(schedule=b, status="success", duration=60, ago=timedelta(days=6, hours=23))
    make_execution(schedule=b, status="failed", duration=5, ago=timedelta(days=3), error_message="boom")
    make_execution(schedule=b, status="missed", ago=timedelta(days=1))
    make_execution(schedule=a, status="running", ago=timedelta(minutes=5))
    make_execution(schedule=a, status="failed", duration=1000, ago=timedelta(days=8))
    make_execution(schedule=b, status="success", duration=1, ago=timedelta(days=30))
    return a, b


def test_statistics_on_known_data(known_week):
    stats = statistics.get_execution_statistics(days=7, now=NOW)
    assert stats == {
        "total_executions": 5,
        "successful": 3,
        "failed": 1,
        "success_rate": 60.0,
        "avg_duration": 23.75,
        "min_duration": 5.0,
        "max_duration": 60.0,
    }
    assert tuple(stats) == statistics.STATISTICS_KEYS


def test_statistics_is_one_aggregate_query(known_week):
    with CaptureQueriesContext(connection) as queries:
        statistics.get_execution_statistics(days=30, now=NOW)
    assert len(queries) == 1
    assert "COUNT(" in queries[0]["sql"] and "AVG(" in queries[0]["sql"]


def test_statistics_of_an_empty_window_has_no_division_by_zero(known_week):
    stats = statistics.get_execution_statistics(days=7, now=NOW + timedelta(days=365))
    assert stats == {
        "total_executions": 0, "successful": 0, "failed": 0, "success_rate": 0.0,
        "avg_duration": None, "min_duration": None, "max_duration": None,
    }


def test_success_rate_rounds_to_one_decimal(make_schedule):
    schedule = make_schedule()
    make_execution(schedule=schedule, status="success")
    make_execution(schedule=schedule, status="success")
    make_execution(schedule=schedule, status="failed")
    assert statistics.get_execution_statistics(days=1, now=NOW)["success_rate"] == 66.7


def test_schedule_statistics(known_week):
    a, b = known_week
    assert statistics.get_schedule_statistics(schedule_id=a.pk, days=7, now=NOW) == {
        "total_executions": 2, "successful": 2, "failed": 0, "success_rate": 100.0,
        "avg_duration": 15.0, "min_duration": 10.0, "max_duration": 20.0,
    }
    b_stats = statistics.get_schedule_statistics(schedule_id=b.pk, days=7, now=NOW)
    assert (b_stats["total_executions"], b_stats["successful"], b_stats["success_rate"]) == (3, 1, 33.3)


def test_daily_outcomes_fill_empty_days(known_week):
    series = statistics.get_daily_outcomes(days=4, now=NOW)
    assert [row["day"] for row in series] == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25),
                                               date(2026, 11, 26)]
    assert [(r["success"], r["failed"], r["other"]) for r in series] == [(0, 1, 0), (1, 0, 0), (0, 0, 1), (1, 0, 0)]


def test_daily_durations(known_week):
    series = statistics.get_daily_durations(days=3, now=NOW)
    assert series == [
        {"day": date(2026, 11, 24), "avg": 20.0, "max": 20.0},
        {"day": date(2026, 11, 25), "avg": None, "max": None},
        {"day": date(2026, 11, 26), "avg": 10.0, "max": 10.0},
    ]


def test_failing_schedules_worst_first(known_week, make_schedule):
    a, b = known_week
    c = make_schedule(domain="c.example.com")
    for hours in (1, 2):
        make_execution(schedule=c, status="failed", ago=timedelta(hours=hours), duration=1)
    rows = statistics.get_failing_schedules(days=7, now=NOW)
    assert [(r["domain"], r["failed"], r["total"], r["success_rate"]) for r in rows] == [
        ("c.example.com", 2, 2, 0.0), ("b.example.com", 1, 3, 33.3)
    ]
    assert rows[0]["schedule_id"] == c.pk
    assert statistics.get_failing_schedules(days=7, now=NOW, limit=1)[0]["domain"] == "c.example.com"


def test_job_history_facade_of_the_design(known_week):
    a, b = known_week
    history = get_job_history()
    assert history is get_job_history()
    recent = history.get_recent_executions(hours=24, now=NOW)
    assert [e.status for e in recent] == ["running", "success", "missed"]  # 24 h ago exactly is inside
    assert len(history.get_executions_by_schedule(b.pk)) == 4
    assert history.get_execution_statistics(days=7, now=NOW)["total_executions"] == 5
    assert history.cleanup_old_executions(days=7, now=NOW, dry_run=True) == 2


def test_windows_statistics_in_one_query_match_the_single_window_ones(known_week):
    lengths = [timedelta(hours=24), timedelta(days=7), timedelta(days=30)]
    with CaptureQueriesContext(connection) as queries:
        rows = statistics.get_statistics_for_windows(lengths=lengths, now=NOW)
    assert len(queries) == 1
    design = [{key: row[key] for key in statistics.STATISTICS_KEYS} for row in rows]
    assert design == [statistics.get_window_statistics(since=NOW - length, until=NOW) for length in lengths]
    # The dashboard's breakdown adds up to the finished total.
    assert all(r["successful"] + r["failed"] + r["missed"] + r["skipped"] + r["other"] == r["total_executions"]
               for r in rows)
    assert [r["missed"] for r in rows] == [1, 1, 1]
    assert [r["total_executions"] for r in rows] == [2, 5, 7]  # the missed run 24 h ago is inside
