"""A herd: N `once` slots due at the same instant, a scan API that takes
--scan-seconds per scan and counts what reaches it, M instances with
--workers each. Reports the drain time against the ideal
(N x scan-seconds / (M x workers)), and what went wrong: missed slots,
duplicated scans, slots left queued, slots never scanned. Rows delivered again
after their instance died, and the repeats the scan API answered by their
Idempotency-Key, are counted too.

    bench/run.sh bench/bench_herd.py --slots 10000 --instances 3 --workers 20 --runs 3
    bench/run.sh bench/bench_herd.py --slots 3000 --instances 1 --runs 3     # scaling: 1, 2, 3
    bench/run.sh bench/bench_herd.py --slots 10000 --instances 3 --restart    # SIGKILL one, SIGTERM one mid-drain

--restart SIGKILLs inst-0 and SIGTERMs inst-1 once 30 % of the scans reached
the API, then restarts both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
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
from tests.scan_api import CountingScanApi  # noqa: E402


def make_schedules(count: int, at: datetime) -> list[str]:
    Schedule.objects.all().delete()
    JobExecution.objects.all().delete()
    SchedulerInstance.objects.all().delete()
    Schedule.objects.bulk_create(
        (Schedule(domain_config_id=f"herd-{n}", domain=f"herd{n}.example.com", frequency="once",
                  time_config={"at": at.isoformat()}, next_run=at) for n in range(count)), batch_size=2000)
    return [str(sid) for sid in Schedule.objects.values_list("schedule_id", flat=True)]


def start(name: str, *, workers: int, api_url: str, grace: int) -> subprocess.Popen:
    env = {**os.environ, "SCAN_API_URL": api_url, "SCAN_RUNNER": "", "MAX_WORKERS": str(workers),
           "DB_POOL_MAX_SIZE": str(workers + 5), "JOB_MISFIRE_GRACE_TIME": str(grace), "LOG_LEVEL": "warning",
           "LOCK_TIMEOUT": "6", "SHUTDOWN_GRACE_SECONDS": "10"}
    return subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--instance-id", name], cwd=ROOT, env=env,
                            start_new_session=True)


def wait_loaded(count: int, expected_jobs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while SchedulerInstance.objects.filter(jobs_loaded=expected_jobs, stopped_at__isnull=True).count() < count:
        if time.monotonic() > deadline:
            raise SystemExit("instances did not load their jobs in time")
        time.sleep(0.2)


def unfinished() -> int:
    return JobExecution.objects.filter(status__in=("queued", "running")).count()


def run_once(*, slots: int, instances: int, workers: int, scan_seconds: float, lead: float, grace: int,
             restart: bool) -> dict:
    with CountingScanApi(seconds=scan_seconds) as api:
        at = (datetime.now(timezone.utc) + timedelta(seconds=lead)).replace(microsecond=0)
        ids = make_schedules(slots, at)
        fleet = {f"inst-{n}": start(f"inst-{n}", workers=workers, api_url=api.url, grace=grace)
                 for n in range(instances)}
        events = []
        try:
            wait_loaded(instances, slots)
            if datetime.now(timezone.utc) >= at:
                raise SystemExit("instances loaded after the slot; raise --lead")
            deadline = time.monotonic() + lead + 20 * slots * scan_seconds / (instances * workers) + 120
            restarted = not restart
            while JobExecution.objects.count() < slots or unfinished():
                if time.monotonic() > deadline:
                    raise SystemExit(f"the herd did not drain in time: {Counter(JobExecution.objects.values_list('status', flat=True))}")
                if not restarted and api.count() >= 0.3 * slots:
                    os.killpg(fleet["inst-0"].pid, signal.SIGKILL)
                    fleet["inst-1"].send_signal(signal.SIGTERM)
                    events.append(f"SIGKILL inst-0, SIGTERM inst-1 at {api.count()} scans")
                    code = fleet["inst-1"].wait(timeout=60)
                    events.append(f"inst-1 exited {code}")
                    for name in ("inst-0", "inst-1"):
                        fleet[name] = start(f"{name}-again", workers=workers, api_url=api.url, grace=grace)
                    restarted = True
                time.sleep(0.5)
        finally:
            for process in fleet.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in fleet.values():
                process.wait(timeout=60)
        rows = JobExecution.objects.filter(trigger="scheduled")
        statuses = Counter(rows.values_list("status", flat=True))
        delays = [(started - slot).total_seconds() for started, slot in
                  rows.filter(status="success").values_list("started_at", "scheduled_for")]
        drain = (rows.aggregate(last=Max("completed_at"))["last"] - at).total_seconds()
        scanned = {sid for sid, _ in api.scans}
        return {
            "drain": drain, "rate": slots / drain, "statuses": statuses, "delays": delays, "events": events,
            "duplicates": len(api.duplicates()), "unscanned": len(set(ids) - scanned), "scans": api.count(),
            "repeats": sum(api.repeats.values()),
            "redelivered": rows.filter(deliveries__gt=1).count(),
            "per_instance": Counter(rows.values_list("instance_id", flat=True)),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slots", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--scan-seconds", type=float, default=0.5)
    parser.add_argument("--grace", type=int, default=10, help="JOB_MISFIRE_GRACE_TIME: far below the drain time")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lead", type=float, default=25.0, help="seconds between start-up and the slot")
    parser.add_argument("--restart", action="store_true")
    args = parser.parse_args()
    ideal = args.slots * args.scan_seconds / (args.instances * args.workers)
    results = []
    for run in range(args.runs):
        r = run_once(slots=args.slots, instances=args.instances, workers=args.workers, scan_seconds=args.scan_seconds,
                     lead=args.lead, grace=args.grace, restart=args.restart)
        s = summary(r["delays"]) if r["delays"] else {"median": 0, "p99": 0}
        print(f"run {run + 1}: drain {r['drain']:.1f} s ({r['drain'] / ideal:.2f} x ideal {ideal:.1f} s), "
              f"{r['rate']:.1f} slots/s, statuses {dict(r['statuses'])}, scans at the API {r['scans']}, "
              f"duplicated {r['duplicates']}, never scanned {r['unscanned']}, redelivered rows {r['redelivered']} "
              f"(repeats answered by Idempotency-Key {r['repeats']}), start delay p50 {s['median']:.1f} s "
              f"p99 {s['p99']:.1f} s, per instance {dict(r['per_instance'])} {'; '.join(r['events'])}", flush=True)
        results.append(r)
    drains = [r["drain"] for r in results]
    rates = [r["rate"] for r in results]
    print(f"\n{args.slots} slots, {args.instances} instance(s) x {args.workers} workers, scans of "
          f"{args.scan_seconds} s, {args.runs} run(s){', restart variant' if args.restart else ''}")
    print(f"drain: median {summary(drains)['median']:.1f} s, worst {max(drains):.1f} s; ideal {ideal:.1f} s "
          f"(median {summary(drains)['median'] / ideal:.2f} x)")
    print(f"throughput: median {summary(rates)['median']:.1f} slots/s")
    print(f"missed {sum(r['statuses']['missed'] for r in results)}, duplicated {sum(r['duplicates'] for r in results)}, "
          f"left queued {sum(r['statuses']['queued'] for r in results)}, "
          f"never scanned {sum(r['unscanned'] for r in results)} over all runs")


if __name__ == "__main__":
    main()
