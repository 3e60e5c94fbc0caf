"""Sharded firing: start-up of several instances over many schedules, and a
shard handover when one instance dies.

Run through bench/run.sh (a throw-away PostgreSQL and Redis):

    bench/run.sh bench/bench_shards.py startup --schedules 1000000 --instances 4 --runs 3
    bench/run.sh bench/bench_shards.py startup --schedules 1000000 --instances 4 --runs 3 --keep
    bench/run.sh bench/bench_shards.py startup --schedules 1000000 --instances 4 --runs 3 --reuse --baseline-mb 95
    bench/run.sh bench/bench_shards.py handover --schedules 2000 --instances 3 --minutes 6

startup: seeds N daily schedules spread over the day (COPY; not measured),
then per run starts --instances runschedulers at once and reports each one's
start-up (process start to its "Loaded ..." line), the time until the lease
table is stable (all 256 shards leased to live instances, each within 1 of
256/instances), peak resident memory (VmHWM) and memory per held schedule
against a baseline instance that holds none. Each run also starts one more
instance and SIGTERMs it --sigterm-after seconds after its process start
(the offsets are cycled over the runs), and times its exit, then times the
exit of the others on SIGTERM.

handover: N schedules firing every minute against a scan API that counts the
scans reaching it (tests.scan_api.CountingScanApi, repeats of an
Idempotency-Key counted once); once a minute's slots have run, SIGKILLs one
instance while slots are due, restarts it 60-90 s later, and reports, for
every (schedule, slot) of the full minutes in between, scans exactly once,
missed and duplicated, and the takeover time of the dead instance's shards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.db.models.functions import Now  # noqa: E402

from bench.stats import summary  # noqa: E402
from history.models import FINISHED_STATUSES, JobExecution  # noqa: E402
from schedules.models import SHARD_COUNT, Schedule, SchedulerInstance, ShardLease, ShardMember, shard_of  # noqa: E402
from schedules.timing.spread import spread_offset  # noqa: E402
from schedules.timing.triggers import trigger_of  # noqa: E402
from tests.scan_api import CountingScanApi  # noqa: E402

UTC = timezone.utc
LOADED = re.compile(r"^(\S+ \S+) - schedules\.runtime - INFO - Loaded (\d+) enabled schedules of (\d+) shard\(s\) "
                    r"in ([\d.]+) s")
JOBS_IN_ALL = re.compile(r"Added \d+ job\(s\) of \d+ shard\(s\) in [\d.]+ s \((\d+) jobs in all\)")
COPY_COLUMNS = ("schedule_id", "shard", "domain_config_id", "domain", "frequency", "time_config", "timezone",
                "scan_settings", "enabled", "next_run", "last_status", "edited_manually", "from_api",
                "created_at", "updated_at")
MB = 1024 * 1024
SHUTDOWN_GRACE = settings.SHUTDOWN_GRACE_SECONDS  # the instances get this process's environment


# --- instances --------------------------------------------------------------
class Instance:
    """One runscheduler process, its log read as it grows."""

    def __init__(self, name: str, log_dir: str, env: dict):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runscheduler", "--instance-id", name], cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "info", "SCAN_RUNNER": "noop", **env},
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.process.pid
        self._offset = 0
        self._partial = b""
        self.loaded: dict | None = None  # the Loaded line: at (s after start), jobs, shards, load_seconds
        self.jobs_in_all = 0  # the last "Added ... (N jobs in all)"
        self.errors: list[str] = []  # ERROR / CRITICAL lines and tracebacks
        self.exit_seconds: float | None = None
        self.stop_signal_at: float | None = None

    def read_log(self) -> None:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._offset)
                data = log.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            match = LOADED.match(line)
            if match and self.loaded is None:
                # asctime is this host's local time, as is time.time()'s reading of it.
                at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                self.loaded = {"at": at - self.started_wall, "jobs": int(match.group(2)),
                               "shards": int(match.group(3)), "load_seconds": float(match.group(4))}
            jobs = JOBS_IN_ALL.search(line)
            if jobs:
                self.jobs_in_all = int(jobs.group(1))
            if " - ERROR - " in line or " - CRITICAL - " in line or line.startswith("Traceback"):
                self.errors.append(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def vm_hwm_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.stop_signal_at = time.monotonic()
            os.killpg(self.pid, signum)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def sigterm_and_time(instances: list[Instance], timeout: float) -> None:
    """SIGTERM all at once; each one's exit_seconds is from its SIGTERM to its exit."""
    for inst in instances:
        inst.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    waiting = [inst for inst in instances if inst.stop_signal_at is not None]
    while waiting:
        for inst in list(waiting):
            if inst.process.poll() is not None:
                inst.exit_seconds = time.monotonic() - inst.stop_signal_at
                waiting.remove(inst)
        if time.monotonic() > deadline:
            for inst in waiting:
                print(f"!! {inst.name} did not exit within {timeout:.0f} s of SIGTERM: SIGKILL", flush=True)
                inst.signal(signal.SIGKILL)
                inst.process.wait()
            break
        time.sleep(0.005)
    for inst in instances:
        inst.read_log()


def kill_leftovers(instances: list[Instance]) -> None:
    """Only the processes this script started, by their process group."""
    for inst in instances:
        if inst.alive():
            os.killpg(inst.pid, signal.SIGKILL)
            inst.process.wait()


def wait_loaded(instances: list[Instance], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for inst in instances:
            inst.read_log()
            if inst.loaded is None and not inst.alive():
                raise SystemExit(f"{inst.name} exited with {inst.process.returncode} before loading:\n{inst.tail()}")
        if all(inst.loaded is not None for inst in instances):
            break
        if time.monotonic() > deadline:
            late = [inst.name for inst in instances if inst.loaded is None]
            raise SystemExit(f"no 'Loaded' line within {timeout:.0f} s from {', '.join(late)}")
        time.sleep(0.05)
    names = [inst.name for inst in instances]
    while SchedulerInstance.objects.filter(instance_id__in=names).count() < len(names):
        if time.monotonic() > deadline:
            raise SystemExit("no heartbeat row after the 'Loaded' line")
        time.sleep(0.05)


# --- leases -----------------------------------------------------------------
def live_leases() -> dict[str, int]:
    """Live leases per owner (expires_at after the database's now)."""
    rows = (ShardLease.objects.filter(owner__isnull=False, expires_at__gt=Now())
            .values("owner").annotate(n=Count("shard")).values_list("owner", "n"))
    return dict(rows)


def leases_stable(names: list[str]) -> bool:
    held = live_leases()
    fair = SHARD_COUNT / len(names)
    return (sum(held.values()) == SHARD_COUNT and set(held) <= set(names)
            and all(abs(held.get(name, 0) - fair) <= 1 for name in names))


def wait_stable(names: list[str], timeout: float, *, every: float = 0.1) -> float | None:
    """Monotonic time at which the lease table became stable (None: not within timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if leases_stable(names):
            return time.monotonic()
        time.sleep(every)
    return None


def reset_runtime_tables() -> None:
    """No instances, members or leases from an earlier run (ensure_leases makes the leases again)."""
    SchedulerInstance.objects.all().delete()
    ShardMember.objects.all().delete()
    ShardLease.objects.all().delete()


def truncate_schedules() -> None:
    """Every schedule goes, with what references them (executions, pauses,
    alert rules): a raw TRUNCATE, since the ORM's delete would record a
    million changes. Only for the throw-away database of bench/run.sh."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE schedules, job_executions, schedule_changes CASCADE")
    reset_runtime_tables()


# --- seeding ----------------------------------------------------------------
def check_copy_columns() -> None:
    """Every NOT NULL column of schedules without a database default is written by the COPY."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'schedules' "
                       "AND is_nullable = 'NO' AND column_default IS NULL")
        required = {row[0] for row in cursor.fetchall()}
    missing = required - set(COPY_COLUMNS)
    if missing:
        raise SystemExit(f"the COPY does not fill the NOT NULL column(s) {', '.join(sorted(missing))} of schedules")


def seed_daily(count: int) -> float:
    """``count`` daily schedules spread over the day's 1,440 minutes, with
    their shard and a true next_run (as a running deployment has them, so
    the start-up writes have nothing to change). Returns the seconds taken."""
    check_copy_columns()
    started = time.monotonic()
    tz = settings.TIME_ZONE
    now = datetime.now(UTC)
    next_runs: dict[tuple[int, int, int], datetime | None] = {}
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY schedules ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            for n in range(count):
                schedule_id = uuid.uuid4()
                hour, minute = n % 24, (n // 24) % 60
                offset = spread_offset(schedule_id, None)  # DEFAULT_SPREAD_SECONDS (0 unless set)
                key = (hour, minute, offset)
                if key not in next_runs:
                    trigger = trigger_of(frequency="daily", time_config={"hour": hour, "minute": minute},
                                         timezone=tz, offset_seconds=offset)
                    next_runs[key] = Schedule.next_run_after(trigger, now=now)
                copy.write_row((schedule_id, shard_of(schedule_id), f"shards-{n}", f"site{n}.example.com", "daily",
                                json.dumps({"hour": hour, "minute": minute}), tz, "{}", True, next_runs[key], "",
                                False, False, now, now))
        cursor.execute("ANALYZE schedules")
    return time.monotonic() - started


# --- startup ----------------------------------------------------------------
def measure_baseline(log_dir: str, *, blocked: bool, timeout: float) -> dict:
    """VmHWM of one instance that holds no schedule, 10 s after its Loaded
    line: on an empty table, or (blocked) with every lease held by a
    placeholder owner, so it takes no shard of the schedules present."""
    reset_runtime_tables()
    if blocked:
        ShardLease.objects.bulk_create(
            [ShardLease(shard=n, owner="bench-placeholder", expires_at=datetime.now(UTC) + timedelta(days=1))
             for n in range(SHARD_COUNT)])
    inst = Instance("shards-baseline", log_dir, {})
    try:
        wait_loaded([inst], timeout)
        time.sleep(max(0.0, inst.started + inst.loaded["at"] + 10 - time.monotonic()))
        hwm = inst.vm_hwm_mb()
    finally:
        sigterm_and_time([inst], 120)
        kill_leftovers([inst])
        reset_runtime_tables()
    if inst.loaded["jobs"]:
        raise SystemExit(f"the baseline instance loaded {inst.loaded['jobs']} schedules, not 0")
    return {"mb": hwm, "startup": inst.loaded["at"], "method": "leases blocked" if blocked else "empty table"}


def startup_run(run: int, args, log_dir: str, offset: float, baseline_mb: float) -> dict:
    reset_runtime_tables()
    names = [f"shards-{run}-{n}" for n in range(args.instances)]
    fleet: list[Instance] = []
    victim: Instance | None = None
    try:
        fleet = [Instance(name, log_dir, {}) for name in names]
        first_start = fleet[0].started
        wait_loaded(fleet, args.timeout)
        stable_at = wait_stable(names, args.timeout)
        if stable_at is None:
            raise SystemExit(f"run {run + 1}: the lease table was not stable within {args.timeout:.0f} s: {live_leases()}")
        all_loaded = max(inst.started + inst.loaded["at"] for inst in fleet)
        time.sleep(max(0.0, all_loaded + 10 - time.monotonic()))
        hwm = {inst.name: inst.vm_hwm_mb() for inst in fleet}
        beats = {row.instance_id: row for row in SchedulerInstance.objects.filter(instance_id__in=names)}
        jobs = {name: beats[name].jobs_loaded for name in names}
        shards = {name: sorted((beats[name].status or {}).get("shards") or []) for name in names}
        still_stable = leases_stable(names)

        # One more instance, SIGTERMed `offset` s after its process start.
        victim = Instance(f"shards-{run}-sigterm", log_dir, {})
        while time.monotonic() < victim.started + offset:
            victim.read_log()
            if not victim.alive():
                break
            time.sleep(0.01)
        victim.read_log()
        loaded_before = victim.loaded is not None
        jobs_before = victim.jobs_in_all
        sigterm_and_time([victim], SHUTDOWN_GRACE + 60)
        exited = time.monotonic()
        again = wait_stable(names, args.timeout)

        hwm_end = {inst.name: inst.vm_hwm_mb() for inst in fleet}
        sigterm_and_time(fleet, SHUTDOWN_GRACE + 60)
    finally:
        kill_leftovers(fleet + ([victim] if victim else []))
    per = []
    for inst in fleet:
        held = jobs[inst.name]
        per.append({
            "name": inst.name, "startup": inst.loaded["at"], "load_seconds": inst.loaded["load_seconds"],
            "loaded_line_jobs": inst.loaded["jobs"], "loaded_line_shards": inst.loaded["shards"],
            "jobs": held, "shards": len(shards[inst.name]), "hwm": hwm[inst.name], "hwm_end": hwm_end[inst.name],
            "per_schedule": ((hwm[inst.name] - baseline_mb) * MB / held) if held and hwm[inst.name] else None,
            "stop_seconds": inst.exit_seconds, "stop_code": inst.process.returncode, "errors": inst.errors,
        })
    all_shards = [s for name in names for s in shards[name]]
    return {
        "per": per, "stable": stable_at - first_start, "still_stable": still_stable,
        "jobs_total": sum(jobs.values()), "shards_disjoint": len(all_shards) == len(set(all_shards)) == SHARD_COUNT,
        "victim": {"name": victim.name, "offset": offset, "loaded_before": loaded_before, "jobs_before": jobs_before,
                   "startup": victim.loaded["at"] if victim.loaded else None, "seconds": victim.exit_seconds,
                   "loaded_jobs": victim.loaded["jobs"] if victim.loaded else None,
                   "loaded_shards": victim.loaded["shards"] if victim.loaded else None,
                   "code": victim.process.returncode, "errors": victim.errors,
                   "stable_again": (again - exited) if again is not None else None},
    }


def stop_member_during_start(args, log_dir: str, offset: float) -> None:
    """Start the fleet together and SIGTERM one of its members ``offset`` s
    after its process start, whatever it is doing (taking shards, loading,
    writing start-up records): it must exit within SHUTDOWN_GRACE_SECONDS."""
    reset_runtime_tables()
    fleet = [Instance(f"stop-{offset:g}-{n}", log_dir, {}) for n in range(args.instances)]
    victim = fleet[0]
    try:
        while time.monotonic() < victim.started + offset and victim.alive():
            victim.read_log()
            time.sleep(0.01)
        victim.read_log()
        doing = "after loading" if victim.loaded else f"while loading ({victim.jobs_in_all} jobs added so far)"
        sigterm_and_time([victim], SHUTDOWN_GRACE + 60)
        within = victim.exit_seconds is not None and victim.exit_seconds <= SHUTDOWN_GRACE
        print(f"SIGTERM to a member {offset:g} s after its start, {doing}: exited in {victim.exit_seconds:.2f} s, "
              f"code {victim.process.returncode}; within SHUTDOWN_GRACE_SECONDS ({SHUTDOWN_GRACE:g} s): {within}",
              flush=True)
        wait_loaded(fleet[1:], args.timeout)
        took = wait_stable([inst.name for inst in fleet[1:]], args.timeout)
        print(f"  the other {len(fleet) - 1} hold every shard {took - victim.started:.1f} s after the victim's start"
              if took is not None else "  the others never held every shard", flush=True)
        sigterm_and_time(fleet[1:], SHUTDOWN_GRACE + 60)
    finally:
        kill_leftovers(fleet)


def fmt(values, spec: str = ".2f", unit: str = "") -> str:
    return ", ".join("-" if v is None else f"{v:{spec}}{unit}" for v in values)


def startup(args) -> None:
    offsets = [float(v) for v in args.sigterm_after.split(",") if v.strip()]
    seeded = None
    baseline = {"mb": args.baseline_mb, "startup": None, "method": "--baseline-mb"}
    with contextlib.nullcontext(args.log_dir) if args.log_dir else tempfile.TemporaryDirectory() as log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        present = Schedule.objects.count()
        reuse = args.reuse and present == args.schedules
        if args.reuse and not reuse:
            print(f"--reuse: the table has {present} schedules, not {args.schedules}: seeding again", flush=True)
        if not reuse:
            truncate_schedules()
        else:
            reset_runtime_tables()
        if args.baseline_mb is None:
            baseline = measure_baseline(log_dir, blocked=reuse, timeout=args.timeout)
            print(f"baseline: an instance holding no schedule ({baseline['method']}): VmHWM {baseline['mb']:.1f} MB, "
                  f"start-up {baseline['startup']:.2f} s", flush=True)
        if not reuse:
            seeded = seed_daily(args.schedules)
            print(f"seeded {args.schedules} daily schedules in {seeded:.1f} s (not measured)", flush=True)
        results = []
        try:
            for run in range(args.runs):
                r = startup_run(run, args, log_dir, offsets[run % len(offsets)], baseline["mb"])
                results.append(r)
                print_startup_run(run, r)
            for offset in [float(v) for v in args.stop_member_after.split(",") if v.strip()]:
                stop_member_during_start(args, log_dir, offset)
        finally:
            if not args.keep:
                truncate_schedules()
    print_startup_summary(args, results, baseline, seeded, reuse, offsets)


def print_startup_run(run: int, r: dict) -> None:
    per, v = r["per"], r["victim"]
    print(f"run {run + 1}: start-up {fmt(p['startup'] for p in per)} s (their own 'in X s': "
          f"{fmt(p['load_seconds'] for p in per)} s); lease table stable {r['stable']:.2f} s after the first start"
          f"{'' if r['still_stable'] else ' (NOT stable 10 s after all loaded)'}", flush=True)
    print(f"  schedules loaded (jobs_loaded) {fmt((p['jobs'] for p in per), 'd')}, sum {r['jobs_total']}; "
          f"shards held {fmt((p['shards'] for p in per), 'd')}{'' if r['shards_disjoint'] else ' (NOT a partition)'};"
          f" first Loaded line {fmt((p['loaded_line_jobs'] for p in per), 'd')} schedules of "
          f"{fmt((p['loaded_line_shards'] for p in per), 'd')} shards", flush=True)
    print(f"  VmHWM 10 s after all loaded {fmt((p['hwm'] for p in per), '.0f')} MB, before stopping "
          f"{fmt((p['hwm_end'] for p in per), '.0f')} MB; per held schedule "
          f"{fmt((p['per_schedule'] for p in per), '.0f')} B", flush=True)
    state = (f"'Loaded' {v['loaded_jobs']} schedules of {v['loaded_shards']} shards {v['startup']:.2f} s after its "
             f"start, {v['jobs_before']} jobs held" if v["loaded_before"]
             else f"still loading, {v['jobs_before']} jobs added so far")
    print(f"  SIGTERM {v['name']} {v['offset']:g} s after its start ({state}): exited in "
          f"{fmt([v['seconds']])} s, code {v['code']}; lease table stable again "
          f"{fmt([v['stable_again']])} s after its exit", flush=True)
    print(f"  SIGTERM the {len(per)} others: exited in {fmt(p['stop_seconds'] for p in per)} s, "
          f"codes {fmt((p['stop_code'] for p in per), 'd')}", flush=True)
    for name, errors in [(p["name"], p["errors"]) for p in per] + [(v["name"], v["errors"])]:
        if errors:
            print(f"  !! {name}: {len(errors)} ERROR/traceback line(s), first: {errors[0]}", flush=True)


def print_startup_summary(args, results: list[dict], baseline: dict, seeded: float | None, reuse: bool,
                          offsets: list[float]) -> None:
    per = [p for r in results for p in r["per"]]
    start = summary([p["startup"] for p in per])
    own = summary([p["load_seconds"] for p in per])
    stable = [r["stable"] for r in results]
    per_schedule = [p["per_schedule"] for p in per if p["per_schedule"] is not None]
    exits = [(r["victim"]["name"], r["victim"]["offset"], r["victim"]["seconds"], r["victim"]["code"])
             for r in results] + [(p["name"], None, p["stop_seconds"], p["stop_code"]) for p in per]
    exit_seconds = [e[2] for e in exits if e[2] is not None]
    print(f"\n$ {shlex.join(['bench/run.sh', *sys.argv])}")
    print(f"{args.schedules} daily schedules, {args.instances} instances started together, {args.runs} run(s); "
          f"{'reused the seeded table' if reuse else f'seeding {seeded:.1f} s (not measured)'}; "
          f"{os.cpu_count()} CPUs")
    print(f"start-up (process start to 'Loaded'), over {len(per)} instance starts: median {start['median']:.2f} s, "
          f"p95 {start['p95']:.2f} s, max {start['max']:.2f} s; their own 'in X s': median {own['median']:.2f} s, "
          f"p95 {own['p95']:.2f} s, max {own['max']:.2f} s")
    for index in range(args.instances):
        mine = [r["per"][index] for r in results]
        s = summary([p["startup"] for p in mine])
        rss = [p["per_schedule"] for p in mine if p["per_schedule"] is not None]
        per_held = f"{summary(rss)['median']:.0f} B" if rss else "-"
        print(f"  instance {index}: start-up median {s['median']:.2f} s, p95 {s['p95']:.2f} s, max {s['max']:.2f} s; "
              f"max VmHWM {max(p['hwm'] or 0 for p in mine):.0f} MB; schedules loaded "
              f"{fmt((p['jobs'] for p in mine), 'd')}; per held schedule (median) {per_held}")
    print(f"lease table stable after the first start: median {summary(stable)['median']:.2f} s, max {max(stable):.2f} s")
    print(f"schedules loaded per instance: median {summary([p['jobs'] for p in per])['median']:.0f}, "
          f"min {min(p['jobs'] for p in per)}, max {max(p['jobs'] for p in per)} "
          f"(every run's sum = {args.schedules}: {all(r['jobs_total'] == args.schedules for r in results)})")
    print(f"peak resident memory (VmHWM): max {max(p['hwm'] or 0 for p in per):.0f} MB 10 s after loading, "
          f"max {max(p['hwm_end'] or 0 for p in per):.0f} MB before stopping; baseline {baseline['mb']:.1f} MB "
          f"({baseline['method']})")
    if per_schedule:
        s = summary(per_schedule)
        print(f"memory per held schedule ((VmHWM - baseline) / jobs_loaded): median {s['median']:.0f} B, "
              f"max {s['max']:.0f} B")
    print(f"SIGTERM to exit (SHUTDOWN_GRACE_SECONDS {SHUTDOWN_GRACE:g}): "
          + "; ".join(f"{name}{f' (+{off:g} s)' if off is not None else ''} {fmt([sec])} s code {code}"
                      for name, off, sec, code in exits))
    print(f"  max {max(exit_seconds, default=float('nan')):.2f} s; all within the grace time: "
          f"{all(e[2] is not None and e[2] <= SHUTDOWN_GRACE for e in exits)}; "
          f"all exit code 0: {all(e[3] == 0 for e in exits)}")
    unused = offsets[len(results):]
    if unused:
        print(f"  (offsets not used with {args.runs} run(s): {', '.join(f'{o:g}' for o in unused)} s)")
    if not args.keep:
        print("schedules deleted (--keep keeps them for --reuse)")


# --- handover ---------------------------------------------------------------
def minute_floor(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def minute_ceil(at: datetime) -> datetime:
    floor = minute_floor(at)
    return floor if floor == at else floor + timedelta(minutes=1)


def sleep_until_wall(at: datetime, *, poll=None) -> None:
    while (left := (at - datetime.now(UTC)).total_seconds()) > 0:
        if poll is not None:
            poll()
        time.sleep(min(left, 0.1))


def make_every_minute(count: int) -> list[str]:
    """``count`` schedules firing every minute, each with its true next_run
    (a slot that passes before the instances load is caught up from it)."""
    truncate_schedules()
    tz = settings.TIME_ZONE
    config = {"expression": "* * * * *"}
    now = datetime.now(UTC)
    batch = []
    for n in range(count):
        schedule = Schedule(domain_config_id=f"handover-{n}", domain=f"handover{n}.example.com", frequency="cron",
                            time_config=config, timezone=tz)
        schedule.next_run = Schedule.next_run_after(schedule.trigger, now=now)
        batch.append(schedule)
    Schedule.objects.bulk_create(batch, batch_size=2000)
    return [str(sid) for sid in Schedule.objects.values_list("schedule_id", flat=True)]


def handover(args) -> None:
    env = {"SCAN_RUNNER": "", "LOCK_TIMEOUT": "6", "JOB_MISFIRE_GRACE_TIME": "60", "MAX_WORKERS": "20",
           "DB_POOL_MAX_SIZE": "25"}
    ids = make_every_minute(args.schedules)
    names = [f"hand-{n}" for n in range(args.instances)]
    events: list[str] = []
    rng = random.Random(args.seed)
    restart_after = args.restart_after if args.restart_after is not None else rng.uniform(60, 90)
    fleet: list[Instance] = []
    log_dir = tempfile.mkdtemp(prefix="bench-shards-")
    with CountingScanApi(seconds=args.scan_seconds) as api:
        env["SCAN_API_URL"] = api.url
        try:
            begun_wall = datetime.now(UTC)
            begun = time.monotonic()
            fleet = [Instance(name, log_dir, env) for name in names]
            wait_loaded(fleet, args.timeout)
            stable = wait_stable(names, args.timeout)
            events.append(f"all loaded {max(i.loaded['at'] for i in fleet):.1f} s after the first start, lease table "
                          f"stable after {fmt([stable - begun if stable else None], '.1f')} s")
            # One minute's slots have run: the first slot after loading, all its rows finished.
            ran = minute_ceil(datetime.now(UTC) + timedelta(seconds=1))
            sleep_until_wall(ran)
            deadline = time.monotonic() + 60
            while JobExecution.objects.filter(trigger="scheduled", scheduled_for=ran,
                                              status__in=FINISHED_STATUSES).count() < len(ids):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            done = JobExecution.objects.filter(trigger="scheduled", scheduled_for=ran,
                                               status__in=FINISHED_STATUSES).count()
            events.append(f"slot {ran:%H:%M} finished for {done} of {len(ids)} schedules")
            # SIGKILL while the next minute's slots are due.
            kill_at = minute_ceil(datetime.now(UTC) + timedelta(seconds=1)) + timedelta(seconds=args.kill_delay)
            sleep_until_wall(kill_at)
            victim = fleet[0]
            dead_shards = set(ShardLease.objects.filter(owner=victim.name, expires_at__gt=Now())
                              .values_list("shard", flat=True))
            victim.read_log()
            killed_wall = datetime.now(UTC)
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            victim.process.wait()
            events.append(f"SIGKILL {victim.name} at {killed_wall:%H:%M:%S} UTC ({args.kill_delay:g} s into "
                          f"the slot), holding {len(dead_shards)} shards")
            takeover = first_taken = None
            while takeover is None and time.monotonic() < killed + 120:
                taken = (ShardLease.objects.filter(shard__in=dead_shards, owner__isnull=False, expires_at__gt=Now())
                         .exclude(owner=victim.name).count())
                if taken and first_taken is None:
                    first_taken = time.monotonic() - killed
                if taken == len(dead_shards):
                    takeover = time.monotonic() - killed
                    break
                time.sleep(0.1)
            events.append(f"its {len(dead_shards)} shards had new live owners {fmt([takeover])} s after the SIGKILL "
                          f"(first {fmt([first_taken])} s)")
            # Restart it, with a new id (as a restarted process gets by default).
            while time.monotonic() < killed + restart_after:
                time.sleep(0.1)
            again = Instance(f"{victim.name}-again", log_dir, env)
            fleet.append(again)
            live_names = [i.name for i in fleet if i is not victim]
            events.append(f"restarted as {again.name} {restart_after:.1f} s after the SIGKILL")
            # The window must hold the first full minute after the restart.
            after_restart = minute_ceil(datetime.now(UTC) + timedelta(seconds=1)) + timedelta(seconds=62)
            end = max(begun + args.minutes * 60,
                      time.monotonic() + (after_restart - datetime.now(UTC)).total_seconds())
            if end > begun + args.minutes * 60:
                events.append(f"run extended to {end - begun:.0f} s so the window holds a full minute after the "
                              "restart")
            balanced = None
            while time.monotonic() < end:
                again.read_log()
                if balanced is None and again.loaded is not None and leases_stable(live_names):
                    balanced = time.monotonic() - again.started
                    events.append(f"{again.name} loaded {again.loaded['jobs']} schedules {again.loaded['at']:.1f} s "
                                  f"after its start; lease table balanced over {len(live_names)} instances "
                                  f"{balanced:.1f} s after its start")
                if not again.alive():
                    events.append(f"!! {again.name} exited with {again.process.returncode}")
                    break
                time.sleep(0.2)
            stopped_wall = datetime.now(UTC)
            alive = [i for i in fleet if i.alive()]
            sigterm_and_time(alive, SHUTDOWN_GRACE + 60)
            events.append("SIGTERM all: exited in " + ", ".join(f"{i.name} {fmt([i.exit_seconds])} s (code "
                                                                 f"{i.process.returncode})" for i in alive))
        finally:
            kill_leftovers(fleet)
        scans = Counter(api.scans)
        repeats = sum(api.repeats.values())
    first_slot = minute_ceil(begun_wall)
    last_slot = minute_floor(stopped_wall) - timedelta(minutes=1)
    slots = []
    at = first_slot
    while at <= last_slot:
        slots.append(at)
        at += timedelta(minutes=1)
    report_handover(args, ids, slots, scans, repeats, events, fleet, takeover, log_dir)


def report_handover(args, ids, slots, scans, repeats, events, fleet, takeover, log_dir) -> None:
    per_slot: Counter[tuple[str, datetime]] = Counter()
    off_window = 0
    for (schedule_id, scheduled_for), n in scans.items():
        slot = datetime.fromisoformat(scheduled_for).astimezone(UTC) if scheduled_for != "manual" else None
        if slot is None or not (slots and slots[0] <= slot <= slots[-1]):
            off_window += n
            continue
        per_slot[schedule_id, slot] += n
    expected = [(sid, slot) for sid in ids for slot in slots]
    once = sum(1 for key in expected if per_slot[key] == 1)
    missed = [key for key in expected if per_slot[key] == 0]
    duplicated = [key for key in expected if per_slot[key] > 1]
    rows: Counter[tuple[str, datetime]] = Counter()
    statuses: Counter[str] = Counter()
    if slots:
        for schedule_id, scheduled_for, status in (JobExecution.objects.filter(
                trigger="scheduled", scheduled_for__gte=slots[0], scheduled_for__lte=slots[-1])
                .values_list("schedule_id", "scheduled_for", "status")):
            rows[str(schedule_id), scheduled_for.astimezone(UTC)] += 1
            statuses[status] += 1
    no_row = sum(1 for key in expected if rows[key] == 0)
    redelivered = (JobExecution.objects.filter(trigger="scheduled", scheduled_for__gte=slots[0],
                                               scheduled_for__lte=slots[-1], deliveries__gt=1).count()
                   if slots else 0)
    missed_by_slot = Counter(slot for _, slot in missed)
    print(f"\n$ {shlex.join(['bench/run.sh', *sys.argv])}")
    print(f"{args.schedules} schedules every minute (cron '* * * * *'), {args.instances} instances (LOCK_TIMEOUT 6, "
          f"JOB_MISFIRE_GRACE_TIME 60, MAX_WORKERS 20, DB_POOL_MAX_SIZE 25), scans of {args.scan_seconds:g} s; "
          f"{os.cpu_count()} CPUs; logs in {log_dir}")
    for event in events:
        print(f"  {event}")
    window = f"{slots[0]:%H:%M}-{slots[-1]:%H:%M} UTC" if slots else "empty"
    print(f"window: {len(slots)} full minute(s), {window}; slots expected {len(expected)}")
    print(f"scans at the API (a repeated Idempotency-Key counted once): exactly once {once}, missed (0 scans) "
          f"{len(missed)}, duplicated (>1 scans) {len(duplicated)}; repeats answered by Idempotency-Key {repeats}; "
          f"scans outside the window {off_window}")
    if missed:
        print("  missed per slot: " + ", ".join(f"{slot:%H:%M} {n}" for slot, n in sorted(missed_by_slot.items())))
    if duplicated:
        print(f"  duplicated, e.g.: {duplicated[:3]}")
    print(f"JobExecution rows in the window: {sum(rows.values())} (statuses {dict(statuses)}); slots without a row "
          f"{no_row}; slots with more than one row {sum(1 for n in rows.values() if n > 1)}; rows delivered again "
          f"(deliveries > 1) {redelivered}")
    print(f"takeover (SIGKILL to every shard of the dead instance owned by a live lease): {fmt([takeover])} s")
    for inst in fleet:
        if inst.errors:
            print(f"  !! {inst.name}: {len(inst.errors)} ERROR/traceback line(s), first: {inst.errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("startup")
    p.add_argument("--schedules", type=int, default=1_000_000)
    p.add_argument("--instances", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sigterm-after", default="2,5,10,20",
                   help="seconds after its process start to SIGTERM the extra instance, cycled over the runs")
    p.add_argument("--baseline-mb", type=float, help="VmHWM of an instance holding no schedule (default: measure it)")
    p.add_argument("--stop-member-after", default="",
                   help="after the runs: start the fleet again and SIGTERM one member this many s after its start "
                        "(comma-separated, one fleet each)")
    p.add_argument("--keep", action="store_true", help="leave the schedules in place at the end")
    p.add_argument("--reuse", action="store_true", help="skip seeding when the table already has --schedules rows")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for loading and a stable lease table")
    p.add_argument("--log-dir", help="keep the instances' logs here (default: a temporary directory, removed)")
    p = sub.add_parser("handover")
    p.add_argument("--schedules", type=int, default=2000)
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--minutes", type=float, default=6)
    p.add_argument("--scan-seconds", type=float, default=0.5)
    p.add_argument("--kill-delay", type=float, default=0.5, help="seconds into a slot to SIGKILL")
    p.add_argument("--restart-after", type=float, help="seconds after the SIGKILL (default: random in 60-90)")
    p.add_argument("--seed", type=int, help="for the random restart delay")
    p.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    {"startup": startup, "handover": handover}[args.command](args)


if __name__ == "__main__":
    main()
