import re

import pytest
from django.test import Client
from prometheus_client.metrics import MetricWrapperBase

from scanner_project import metrics


def _names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            names.update(f.name + ("_total" if f.type == "counter" else "") for f in value.describe())
    return names


@pytest.mark.django_db
def test_metrics_endpoint_exposes_the_service_metrics_without_login():
    metrics.HISTORY_CLEANUP_DELETED.inc(0)
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    names = _names()
    assert len(names) == 14
    for name in names:
        assert re.search(rf"^# TYPE {name} ", body, re.M), name
    assert "scanner_history_cleanup_deleted_total" in body


def test_metrics_only_answers_get():
    assert Client().post("/metrics").status_code == 405
