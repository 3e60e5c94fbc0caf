"""1,000 schedules due at the same instant, no-op runner: start delay and throughput.

Starts N real `runscheduler` processes, waits until every slot has finished,
and reads the numbers from job_executions (started_at - scheduled_for).
Run through bench/run.sh, which starts a throw-away PostgreSQL and Redis:

    bench/run.sh bench/bench_slots.py --instances 1 --runs 5
    bench/run.sh bench/bench_slots.py --instances 3 --runs 5
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")

import django  # noqa: E402

django.setup()

from django.db.models import Max  # noqa: E402

from bench.stats import summary  # noqa: E402
from history.models import JobExecution  # noqa: E402
from schedules.models import Schedule, SchedulerInstance  # noqa: E402


def make_schedules(count: int, at: datetime) -> None:
    Schedule.objects.all().delete()
    JobExecution.objects.all().delete()
    SchedulerInstance.objects.all().delete()
    Schedule.objects.bulk_create(
        Schedule(domain_config_id=f"bench-{n}", domain=f"site{n}.example.com", frequency="once",
                 time_config={"at": at.isoformat()}, next_run=at)
        for n in range(count)
    )


def start_instances(count: int, workers: int, profile_dir: str | None) -> list[subprocess.Popen]:
    processes = []
    for n in range(count):
        env = {**os.environ, "SCAN_RUNNER": "noop", "MAX_WORKERS": str(workers),
               "LOG_LEVEL": "warning"}
        command = [sys.executable, "manage.py", "runscheduler", "--instance-id", f"bench-{n}"]
        if profile_dir:
            # py-spy samples every thread (cProfile would see only the main one).
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            command = [py_spy, "record", "--format", "raw", "--rate", "250", "--nonblocking",
                       "-o", f"{profile_dir}/instance-{n}.txt", "--", *command]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True))
    return processes


def wait_loaded(count: int, expected_jobs: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if SchedulerInstance.objects.filter(jobs_loaded=expected_jobs).count() == count:
            return
        time.sleep(0.1)
    raise SystemExit("instances did not load their jobs in time")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(*, instances: int, schedules: int, workers: int, lead: float, profile_dir: str | None) -> dict:
    at = (datetime.now(timezone.utc) + timedelta(seconds=lead)).replace(microsecond=0)
    make_schedules(schedules, at)
    processes = start_instances(instances, workers, profile_dir)
    try:
        wait_loaded(instances, schedules)
        if datetime.now(timezone.utc) >= at:
            raise SystemExit("instances loaded after the slot; raise --lead")
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        deadline = time.monotonic() + lead + 120
        while JobExecution.objects.filter(status="success").count() < schedules:
            if time.monotonic() > deadline:
                raise SystemExit("slots did not all finish in time")
            time.sleep(0.2)
        # The scheduler processes' CPU from loaded to drained: steadier than
        # throughput on a shared machine (meaningless under --profile).
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGINT)  # py-spy writes its profile on SIGINT
        for process in processes:
            process.wait(timeout=60)
    rows = JobExecution.objects.filter(status="success")
    delays = [(started - slot).total_seconds() for started, slot in rows.values_list("started_at", "scheduled_for")]
    last_done = rows.aggregate(last=Max("completed_at"))["last"]
    span = (last_done - at).total_seconds()
    per_instance = {}
    for instance_id in rows.values_list("instance_id", flat=True):
        per_instance[instance_id] = per_instance.get(instance_id, 0) + 1
    return {"delays": delays, "span": span, "rate": schedules / span, "per_instance": per_instance,
            "rows": JobExecution.objects.count(), "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lead", type=float, default=12.0, help="seconds between start-up and the slot")
    parser.add_argument("--profile", metavar="DIR", help="write py-spy samples (collapsed stacks) of each instance to DIR")
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        result = run_once(instances=args.instances, schedules=args.schedules, workers=args.workers,
                          lead=args.lead, profile_dir=args.profile)
        s = summary(result["delays"])
        assert result["rows"] == args.schedules, f"expected {args.schedules} rows, found {result['rows']}"
        print(f"run {run + 1}: p50 delay {s['median']:.3f} s, p99 {s['p99']:.3f} s, max {s['max']:.3f} s, "
              f"{result['rate']:.0f} slots/s, scheduler CPU {result['cpu']:.2f} s, per instance {sorted(result['per_instance'].values())}", flush=True)
        results.append(result)
    p50s = [summary(r["delays"])["median"] for r in results]
    p99s = [summary(r["delays"])["p99"] for r in results]
    rates = [r["rate"] for r in results]
    print(f"\n{args.instances} instance(s), {args.schedules} slots at one instant, {args.workers} workers each, "
          f"{args.runs} runs")
    print(f"p50 start delay: median {summary(p50s)['median']:.3f} s over runs")
    print(f"p99 start delay: median {summary(p99s)['median']:.3f} s, worst {max(p99s):.3f} s")
    print(f"throughput: median {summary(rates)['median']:.0f} slots/s, worst {min(rates):.0f} slots/s")
    cpus = [r["cpu"] for r in results]
    print(f"scheduler CPU from loaded to drained: median {summary(cpus)['median']:.2f} s")


if __name__ == "__main__":
    main()
