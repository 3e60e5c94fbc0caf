from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import override_settings

from history import cleanup
from history.models import JobExecution
from scanner_project.metrics import HISTORY_CLEANUP_DELETED
from tests.history_factories import NOW, make_execution

pytestmark = pytest.mark.django_db


def _metric() -> float:
    return HISTORY_CLEANUP_DELETED._value.get()


@pytest.fixture
def aged(make_schedule):
    schedule = make_schedule()
    for days in (1, 89, 91, 100, 200, 365, 400):
        make_execution(schedule=schedule, status="success", ago=timedelta(days=days))
    # Live rows are never history, however old.
    make_execution(schedule=schedule, status="running", ago=timedelta(days=120))
    make_execution(schedule=schedule, status="queued", ago=timedelta(days=120))
    return schedule


def test_deletes_in_batches_and_counts(aged):
    before = _metric()
    assert cleanup.cleanup_old_executions(days=90, batch_size=2, now=NOW) == 5
    assert _metric() - before == 5
    left = sorted(JobExecution.objects.values_list("status", flat=True))
    assert left == ["queued", "running", "success", "success"]


def test_each_batch_deletes_by_primary_key(aged):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        cleanup.cleanup_old_executions(days=90, batch_size=2, now=NOW)
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert all('"execution_id" IN' in sql for sql in deletes)


def test_dry_run_deletes_nothing(aged):
    before = _metric()
    assert cleanup.cleanup_old_executions(days=90, dry_run=True, now=NOW) == 5
    assert JobExecution.objects.count() == 9
    assert _metric() == before


def test_rejects_nonsense_arguments():
    with pytest.raises(ValueError, match="days: 0 must be at least 1"):
        cleanup.cleanup_old_executions(days=0)
    with pytest.raises(ValueError, match="batch_size: 0"):
        cleanup.cleanup_old_executions(days=1, batch_size=0)


def test_command(aged, capsys, time_machine):
    time_machine.move_to(NOW, tick=False)
    call_command("cleanuphistory", "--days", "90", "--dry-run")
    assert "Would delete 5 execution(s) older than 90 day(s)." in capsys.readouterr().out
    call_command("cleanuphistory", "--days", "150", "--batch-size", "1")
    assert "Deleted 3 execution(s)" in capsys.readouterr().out
    assert JobExecution.objects.count() == 6
    with pytest.raises(CommandError, match="days: -1"):
        call_command("cleanuphistory", "--days", "-1")


@override_settings(HISTORY_RETENTION_DAYS=90)
def test_cleanup_if_due_runs_once_a_day_across_instances(aged, time_machine):
    time_machine.move_to(NOW, tick=False)
    assert cleanup.cleanup_if_due(instance_id="host-a-1") == 5
    assert cleanup.cleanup_if_due(instance_id="host-b-2") is None
    assert cleanup.cleanup_if_due(instance_id="host-a-1") is None
    assert cache.get(cleanup.DUE_KEY) == "host-a-1"
    assert 86000 < cache.ttl(cleanup.DUE_KEY) <= 86400  # django-redis: the day is enforced by Redis
    cache.delete(cleanup.DUE_KEY)  # a day later
    assert cleanup.cleanup_if_due(instance_id="host-b-2") == 0


@override_settings(HISTORY_RETENTION_DAYS=0)
def test_cleanup_if_due_is_off_without_retention(aged):
    assert cleanup.cleanup_if_due(instance_id="host-a-1") is None
    assert JobExecution.objects.count() == 9
    assert cache.get(cleanup.DUE_KEY) is None
