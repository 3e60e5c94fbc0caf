"""API sync benchmark: first import of N entries, then an unchanged re-import.

Needs a migrated PostgreSQL in DATABASE_URL; bench/run.sh bench/bench_sync.py starts a
throw-away one. The API is a real HTTP server on 127.0.0.1 (tests/api_server).
Usage: python bench/bench_sync.py [--entries 10000] [--runs 7]
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

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.stats import summary  # noqa: E402
from schedules.importer.apply import sync_schedules_from_api  # noqa: E402
from schedules.models import Schedule  # noqa: E402
from tests.api_server import ApiServer, many  # noqa: E402


def writes(queries) -> int:
    return sum(q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for q in queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("run against PostgreSQL (bench/run.sh bench/bench_sync.py)")
    first_times, again_times = [], []
    with ApiServer() as server:
        url = server.serve_json("/schedules", many(args.entries))
        for run in range(1, args.runs + 1):
            Schedule.objects.all().delete()
            started = time.perf_counter()
            first = sync_schedules_from_api(url=url)
            first_times.append(time.perf_counter() - started)
            assert first["created"] == args.entries, first["created"]
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                again = sync_schedules_from_api(url=url)
                again_times.append(time.perf_counter() - started)
            assert again["skipped"] == args.entries and writes(queries.captured_queries) == 0
            print(f"run {run}: first import {first_times[-1]:.3f} s, unchanged re-import {again_times[-1]:.3f} s "
                  f"({len(queries.captured_queries)} queries, 0 writes)")
    Schedule.objects.all().delete()
    for name, values in (("first import", first_times), ("unchanged re-import", again_times)):
        s = summary(values)
        print(f"{name} of {args.entries}: median {s['median']:.3f} s, p95 {s['p95']:.3f} s, p99 {s['p99']:.3f} s, "
              f"min {min(values):.3f} s, max {s['max']:.3f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
