"""Live schedule changes: commit-to-applied latency, full-diff cost, start-up load.

Run through bench/run.sh (a throw-away PostgreSQL and Redis):

    bench/run.sh bench/bench_live.py latency --schedules 10000 --instances 3 --edits 100
    bench/run.sh bench/bench_live.py latency --schedules 10000 --instances 3 --edits 100 --no-redis
    bench/run.sh bench/bench_live.py latency --schedules 10000 --instances 3 --edits 100 --no-redis --delete
    bench/run.sh bench/bench_live.py diff --schedules 10000 --runs 7
    bench/run.sh bench/bench_live.py diff --schedules 100000 --runs 5
    bench/run.sh bench/bench_live.py startup --schedules 100000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402

from bench.stats import summary  # noqa: E402
from history.models import JobExecution  # noqa: E402
from schedules.models import Schedule, SchedulerInstance  # noqa: E402
from schedules.services import update_schedule  # noqa: E402

APPLIED = re.compile(r"^(\S+ \S+) - schedules.runtime - INFO - Applied (\w+) of schedule (\S+) \((\w[\w-]*)\)")


def make_schedules(count: int) -> list:
    """Daily schedules spread over the day: nothing fires during a benchmark."""
    Schedule.objects.all().delete()
    JobExecution.objects.all().delete()
    SchedulerInstance.objects.all().delete()
    batch = []
    for n in range(count):
        batch.append(Schedule(domain_config_id=f"live-{n}", domain=f"site{n}.example.com", frequency="daily",
                              time_config={"hour": n % 24, "minute": (n // 24) % 60}))
        if len(batch) == 5000:
            Schedule.objects.bulk_create(batch)
            batch = []
    Schedule.objects.bulk_create(batch)
    return list(Schedule.objects.values_list("schedule_id", flat=True))


def start_instance(name: str, log_dir: str, env: dict) -> tuple[subprocess.Popen, Path]:
    log_path = Path(log_dir) / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runscheduler", "--instance-id", name], cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "info", "SCAN_RUNNER": "noop", **env},
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return process, log_path


def wait_for_line(log_path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and text in log_path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise SystemExit(f"{log_path.name}: no {text!r} within {timeout} s")


def stop(processes) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def latency(args) -> None:
    ids = make_schedules(args.schedules)
    env = {"SCHEDULE_CHECK_INTERVAL": "3600"}
    if args.no_redis:
        env.update({"REDIS_URL": "", "REDIS_HOST": ""})
    with tempfile.TemporaryDirectory() as log_dir:
        started = [start_instance(f"live-{n}", log_dir, env) for n in range(args.instances)]
        try:
            for _, log_path in started:
                wait_for_line(log_path, "Loaded", 120)
            time.sleep(2)
            edits: dict[str, float] = {}
            for n, schedule_id in enumerate(random.sample(ids, args.edits)):
                with transaction.atomic():
                    # Registered first, so it runs at commit, before the notice is published.
                    transaction.on_commit(lambda key=str(schedule_id): edits.__setitem__(key, time.time()))
                    if args.delete:  # a queryset delete: no signal, found by the change log or a notice
                        Schedule.objects.filter(schedule_id=schedule_id).delete()
                    else:
                        update_schedule(schedule_id=schedule_id, time_config={"hour": n % 24, "minute": 59})
                time.sleep(args.spacing)
            time.sleep(3)
        finally:
            stop([p for p, _ in started])
        latencies, sources = [], {}
        for _, log_path in started:
            seen = set()
            for line in log_path.read_text(errors="replace").splitlines():
                match = APPLIED.match(line)
                if not match or match.group(3) not in edits or match.group(3) in seen:
                    continue
                seen.add(match.group(3))
                # asctime is this host's local time: read it as such, compare in UTC.
                at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(timezone.utc)
                latencies.append(at.timestamp() - edits[match.group(3)])
                sources[match.group(4)] = sources.get(match.group(4), 0) + 1
            missing = set(edits) - seen
            if missing:
                raise SystemExit(f"{log_path.name}: {len(missing)} edits never applied")
    s = summary(latencies)
    mode = "without Redis (change-log poll)" if args.no_redis else "with Redis (pub/sub notices)"
    print(f"{args.edits} {'deletes' if args.delete else 'edits'} x {args.instances} instances, {args.schedules} schedules loaded, {mode}")
    print(f"commit-to-applied latency: p50 {s['median'] * 1000:.0f} ms, p95 {s['p95'] * 1000:.0f} ms, "
          f"p99 {s['p99'] * 1000:.0f} ms, max {s['max'] * 1000:.0f} ms; applied via {sources}")


def diff(args) -> None:
    from schedules.models import SHARD_COUNT
    from schedules.runtime import SchedulerService

    make_schedules(args.schedules)
    service = SchedulerService(instance_id="bench-diff")
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    service.jobs.load_shards(dict.fromkeys(range(SHARD_COUNT), now), now=now)
    load_seconds = time.monotonic() - started
    timings = []
    for _ in range(args.runs):
        started = time.monotonic()
        fixed = service.feed.full_diff()
        timings.append(time.monotonic() - started)
        assert fixed == 0
    s = summary(timings)
    print(f"full diff of {args.schedules} schedules (no changes), {args.runs} runs: median {s['median']:.3f} s, "
          f"p95 {s['p95']:.3f} s, max {s['max']:.3f} s (in-process load of every shard took {load_seconds:.2f} s)")


def startup(args) -> None:
    make_schedules(args.schedules)
    seconds, rss, loads = [], [], []
    with tempfile.TemporaryDirectory() as log_dir:
        for run in range(args.runs):
            begun = time.monotonic()
            process, log_path = start_instance(f"startup-{run}", log_dir, {})
            try:
                wait_for_line(log_path, "Loaded", 300)
                while not SchedulerInstance.objects.filter(instance_id=f"startup-{run}").exists():
                    time.sleep(0.05)
                seconds.append(time.monotonic() - begun)
                # The load's own time: the shard leases, the first fire times, adding the jobs.
                loads.append(float(re.search(r"enabled schedules of \d+ shard\(s\) in ([\d.]+) s", log_path.read_text()).group(1)))
                time.sleep(10)  # let the background start-up writes finish, then read the peak
                status = Path(f"/proc/{process.pid}/status").read_text()
                rss.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)
            finally:
                stop([process])
    print(f"start-up with {args.schedules} schedules, {args.runs} runs (process start to first heartbeat): "
          f"median {summary(seconds)['median']:.1f} s, max {max(seconds):.1f} s; "
          f"peak resident memory (VmHWM, 10 s after) median {summary(rss)['median']:.0f} MB, max {max(rss):.0f} MB")
    print(f"per run: start-up {', '.join(f'{s:.2f}' for s in seconds)} s; "
          f"load {', '.join(f'{s:.2f}' for s in loads)} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--schedules", type=int, default=10000)
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--edits", type=int, default=100)
    p.add_argument("--spacing", type=float, default=0.1)
    p.add_argument("--no-redis", action="store_true")
    p.add_argument("--delete", action="store_true", help="delete the schedules instead of editing them")
    p = sub.add_parser("diff")
    p.add_argument("--schedules", type=int, default=10000)
    p.add_argument("--runs", type=int, default=5)
    p = sub.add_parser("startup")
    p.add_argument("--schedules", type=int, default=100000)
    p.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    {"latency": latency, "diff": diff, "startup": startup}[args.command](args)


if __name__ == "__main__":
    main()
