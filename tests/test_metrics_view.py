import re

import pytest
from django.test import Client

from scanner_project import metrics

# The metrics operators' dashboards and alerts are built on, by name: a
# renamed or dropped one breaks them, so each is listed here on purpose.
DOCUMENTED = {
    "counter": ["scanner_executions_total", "scanner_claim_losses_total", "scanner_lock_contention_total",
                "scanner_locks_lost_total", "scanner_schedule_changes_applied_total", "scanner_sync_entries_total",
                "scanner_sync_failures_total", "scanner_history_cleanup_deleted_total"],
    "histogram": ["scanner_execution_duration_seconds", "scanner_slot_start_delay_seconds"],
    "gauge": ["scanner_schedules_loaded", "scanner_queue_depth", "scanner_queue_oldest_seconds",
              "scanner_loop_alive"],
}


@pytest.mark.django_db
def test_metrics_endpoint_exposes_every_documented_metric_without_login():
    metrics.HISTORY_CLEANUP_DELETED.inc(0)
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for kind, names in DOCUMENTED.items():
        for name in names:
            assert re.search(rf"^# TYPE {name} {kind}$", body, re.M), name
    assert re.search(r"^scanner_history_cleanup_deleted_total \d+\.\d+$", body, re.M)


def test_metrics_only_answers_get():
    assert Client().post("/metrics").status_code == 405
