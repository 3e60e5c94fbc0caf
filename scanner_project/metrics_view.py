"""GET /metrics: this web process's Prometheus registry.

No login (scrapers don't log in), but it is meant for the internal network:
the reverse proxy should not route /metrics from outside.
"""

import logging

from django.db import DatabaseError
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from scanner_project import metrics  # registers the service's metrics


@never_cache
@require_GET
def metrics_view(request):
    _read_queue()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _read_queue() -> None:
    """The queue lives in the database, shared by every instance: read it now."""
    from history.statistics import get_queue_backlog

    try:
        backlog = get_queue_backlog()
    except DatabaseError as exc:
        logging.getLogger(__name__).warning("/metrics: could not read the queue: %s", exc)
        return
    metrics.QUEUE_DEPTH.set(backlog["depth"])
    metrics.QUEUE_OLDEST.set(backlog["oldest_seconds"] or 0)
