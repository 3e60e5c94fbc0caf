"""GET /healthz: database, Redis and scheduler instances, answered within a second.

Each check runs in its own thread and is abandoned (reported as a timeout) if
it has not answered by the deadline: a hung PostgreSQL or Redis must not hang
the health check that exists to notice it. A check still running from an
earlier request is not started again, so a long outage does not pile up threads.

The scheduler check makes /healthz a readiness/alerting signal for the whole
service (no live instance means no scans run), not a liveness probe for the
web process alone.
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Callable

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from scanner_project.connections import DatabaseConnection, get_db_connection, get_redis_client
from scanner_project.redaction import redact_userinfo, shorten

DEADLINE_SECONDS = 0.8  # all checks together; leaves room for the response itself

_in_flight: dict[str, threading.Thread] = {}
_in_flight_lock = threading.Lock()


def _run_with_timeout(name: str, check: Callable[[], dict], *, timeout: float) -> Callable[[], dict]:
    """Start ``check`` in a daemon thread; returns a function that waits at most
    until the deadline and gives its result or a timeout status."""
    result: dict = {}
    with _in_flight_lock:
        previous = _in_flight.get(name)
        if previous is not None and previous.is_alive():
            return lambda: {"status": "timeout", "detail": "the previous check has not answered yet"}

        def target():
            try:
                result.update(check())
            except Exception as exc:  # noqa: BLE001 - any failure is a failed check
                result.update({"status": "error", "detail": redact_userinfo(shorten(f"{type(exc).__name__}: {exc}"))})

        thread = threading.Thread(target=target, name=f"healthz-{name}", daemon=True)
        _in_flight[name] = thread
        thread.start()
    deadline = time.monotonic() + timeout

    def wait() -> dict:
        thread.join(max(deadline - time.monotonic(), 0))
        if thread.is_alive():
            return {"status": "timeout", "detail": f"no answer within {timeout:g} s"}
        return result

    return wait


def check_database(*, db: DatabaseConnection, timeout: float) -> dict:
    """Ping, then count live scheduler instances on the same connection."""
    try:
        if not db.ping(timeout=timeout):
            return {"database": {"status": "error"}}
        from schedules.models import SchedulerInstance

        live = list(SchedulerInstance.objects.using(db.alias).live().values_list("instance_id", "last_seen"))
        from history.statistics import get_queue_backlog

        backlog = get_queue_backlog(using=db.alias)
        late = backlog["oldest_seconds"] is not None and backlog["oldest_seconds"] > settings.QUEUE_WARN_SECONDS
        from schedules import shards
        from schedules.runtime.config import RuntimeConfig

        # A shard without an owner for two heartbeats: its slots are not fired.
        unowned_after = 2 * RuntimeConfig.from_settings().heartbeat_interval
        unowned = shards.unowned_count(longer_than=unowned_after, using=db.alias)
        return {
            "database": {"status": "ok"},
            # Late work is degraded, not down: scans still run, only behind.
            "queue": {"status": "degraded" if late else "ok", **backlog, "warn_seconds": settings.QUEUE_WARN_SECONDS},
            "shards": {"status": "degraded" if unowned else "ok", "unowned": unowned,
                       "unowned_after_seconds": unowned_after},
            "scheduler": {
                "status": "ok" if live else "down",
                "live_instances": len(live),
                "instances": [{"instance_id": i, "last_seen": seen.isoformat()} for i, seen in live],
            },
        }
    finally:
        # A thread's connection is its own; hand it back (to the pool) now.
        db.close()


def check_redis() -> dict:
    return {"status": "ok" if get_redis_client().ping() else "error"}


def health_report(*, db: DatabaseConnection | None = None, timeout: float = DEADLINE_SECONDS) -> dict:
    db = db or get_db_connection()
    waits = {"database": _run_with_timeout(f"database:{db.alias}", lambda: check_database(db=db, timeout=timeout),
                                           timeout=timeout)}
    if settings.REDIS_URL:
        waits["redis"] = _run_with_timeout("redis", check_redis, timeout=timeout)
    database = waits["database"]()
    report = {
        "database": database.get("database", database),  # a timeout or error of the thread itself
        "redis": waits["redis"]() if "redis" in waits else {"status": "disabled"},
        "scheduler": database.get("scheduler", {"status": "unknown", "detail": "the database did not answer"}),
        "queue": database.get("queue", {"status": "unknown", "detail": "the database did not answer"}),
        "shards": database.get("shards", {"status": "unknown", "detail": "the database did not answer"}),
    }
    healthy = (
        report["database"]["status"] == "ok"
        and report["redis"]["status"] in ("ok", "disabled")
        and report["scheduler"]["status"] == "ok"
    )
    if not healthy:
        return {"status": "error", **report}
    degraded = "degraded" in (report["queue"]["status"], report["shards"]["status"])
    return {"status": "degraded" if degraded else "ok", **report}


DETAILS_PERMISSION = "schedules.view_schedulerinstance"


def may_see_details(request) -> bool:
    """Instance ids and error texts are for staff who may view scheduler
    instances in admin (DETAILS_PERMISSION) and for monitors holding
    HEALTHZ_TOKEN (``Authorization: Bearer <token>``); others get the status."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff and user.has_perm(DETAILS_PERMISSION):
        return True
    token = settings.HEALTHZ_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@never_cache
@require_GET
def healthz(request):
    report = health_report()
    body = report if may_see_details(request) else {"status": report["status"]}
    # Degraded (a late queue) is still 200: scans run, only behind.
    return JsonResponse(body, status=503 if report["status"] == "error" else 200)
