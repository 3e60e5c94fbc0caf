"""Server time of the history reads with a million execution rows.

Run through bench/run.sh bench/bench_history.py (it starts PostgreSQL and Redis). Prints
median, p95 and p99 in milliseconds for each measured read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from bench.stats import summary  # noqa: E402
from history.statistics import get_execution_statistics  # noqa: E402

SCHEDULES = 1000
SPAN_DAYS = 90  # the rows cover the last 90 days, like HISTORY_RETENTION_DAYS=90

SEED_SCHEDULES = """
INSERT INTO schedules (schedule_id, domain_config_id, domain, frequency, time_config, timezone, scan_settings,
                       enabled, next_run, last_status, edited_manually, created_at, updated_at)
SELECT md5('s' || g)::uuid, 'cfg-' || g, 'site' || g || '.example.com', 'daily', '{"hour": 2, "minute": 0}',
       'UTC', '{}', true, now() + (g || ' minutes')::interval, '', false, now(), now()
FROM generate_series(1, %(schedules)s) g
"""

SEED_EXECUTIONS = """
INSERT INTO job_executions (execution_id, schedule_id, job_id, domain, domain_config_id, status, trigger,
                            scheduled_for, started_at, completed_at, duration_seconds, scan_id, error_message,
                            error_details, metadata, instance_id, heartbeat_at, created_at)
SELECT md5('e' || g)::uuid, md5('s' || (g %% %(schedules)s + 1))::uuid,
       'schedule:' || md5('s' || (g %% %(schedules)s + 1))::uuid,
       'site' || (g %% %(schedules)s + 1) || '.example.com', 'cfg-' || (g %% %(schedules)s + 1),
       CASE WHEN g %% 20 = 0 THEN 'failed' WHEN g %% 97 = 0 THEN 'missed' ELSE 'success' END, 'scheduled',
       t, t, t + make_interval(secs => 5 + (g %% 115)), 5 + (g %% 115), '',
       CASE WHEN g %% 20 = 0 THEN 'ConnectionError: refused' ELSE '' END,
       CASE WHEN g %% 20 = 0 THEN '{"type": "ConnectionError", "traceback": "Traceback ..."}'::jsonb END,
       '{}', 'host-' || (g %% 3) || '-1', NULL, t
FROM generate_series(1, %(rows)s) g,
     LATERAL (SELECT now() - make_interval(secs => g * %(span)s::float8 / %(rows)s)) AS s(t)
"""


def seed(*, rows: int) -> None:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(SEED_SCHEDULES, {"schedules": SCHEDULES})
        cursor.execute(SEED_EXECUTIONS, {"schedules": SCHEDULES, "rows": rows, "span": SPAN_DAYS * 86400})
        cursor.execute("VACUUM ANALYZE job_executions")
        cursor.execute("VACUUM ANALYZE schedules")
    print(f"seeded {rows} executions in {time.monotonic() - started:.1f} s")


def measure(name: str, call, *, runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    result = {"name": name, **summary(times)}
    print(f"{name:<40} median {result['median']:7.1f} ms  p95 {result['p95']:7.1f} ms  "
          f"p99 {result['p99']:7.1f} ms  max {result['max']:7.1f} ms  ({runs} runs)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    seed(rows=args.rows)
    settings.ALLOWED_HOSTS.append("testserver")
    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "bench-password"))

    def get(url):
        def call():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        return call

    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} CPUs")
    measure("get_execution_statistics(days=7)", lambda: get_execution_statistics(days=7), runs=args.runs)
    measure("admin executions list", get("/admin/history/jobexecution/"), runs=args.runs)
    measure("admin list, status=failed", get("/admin/history/jobexecution/?status__exact=failed"), runs=args.runs)
    measure("admin list, domain filter", get("/admin/history/jobexecution/?domain=site7.example.com"),
            runs=args.runs)
    measure("dashboard", get("/admin/dashboard/"), runs=args.runs)


if __name__ == "__main__":
    main()
