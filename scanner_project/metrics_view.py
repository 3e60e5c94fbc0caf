"""GET /metrics: this web process's Prometheus registry.

No login (scrapers don't log in), but it is meant for the internal network:
the reverse proxy should not route /metrics from outside.
"""

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from . import metrics  # noqa: F401 - registers the service's metrics


@never_cache
@require_GET
def metrics_view(request):
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
