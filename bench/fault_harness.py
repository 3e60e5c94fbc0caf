"""Fault harness: three real `runscheduler` processes against a real PostgreSQL
and Redis, while the harness kills, freezes, restarts and skews them.

Timeline (fractions of --duration after all three instances loaded):
  15 % SIGKILL inst-0, restart it at once
  30 % SIGSTOP inst-1 for 1.5 x the lock timeout, then SIGCONT
  45 % restart Redis (down --redis-down s)
  60 % restart PostgreSQL (down --pg-down s)
  75 % SIGTERM inst-2, restart it with its clock 3 s ahead
Then SIGTERM to every instance, and fault_checks judges the slots in the
window from the database and the runs file (tests.runners.sleepy_runner).

Needs the environment of scripts/services.sh (DATABASE_URL, REDIS_URL,
TEST_PG_*, TEST_REDIS_PORT, TEST_SERVICES_DIR) and a migrated, empty database:
bench/run.sh bench/fault_harness.py provides both. Exit status 0 only when the run passed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc
CLOCK_OFFSET = 3.0
# Slots this close to the start or to the final SIGTERM are left out: an
# instance that is still starting or already stopping does not fire them.
EDGE_MARGIN = 3.0
LOAD_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass
class Options:
    duration: float = 180.0
    schedules: int = 100
    interval: int = 2
    sleep_max: float = 1.5
    lock_timeout: float = 6.0
    grace: int = 5
    pg_down: float = 8.0
    redis_down: float = 3.0
    max_workers: int = 40
    workdir: Path | None = None


@dataclass
class Outcome:
    verdict: object
    table: str
    start: datetime
    end: datetime
    faults: list = field(default_factory=list)
    workdir: Path | None = None


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=Options.duration, help="seconds of faults and load")
    p.add_argument("--schedules", type=int, default=Options.schedules)
    p.add_argument("--interval", type=int, default=Options.interval, help="seconds between slots")
    p.add_argument("--sleep-max", type=float, default=Options.sleep_max, help="the runner sleeps 0..this")
    p.add_argument("--lock-timeout", type=float, default=Options.lock_timeout, help="LOCK_TIMEOUT of the instances")
    p.add_argument("--grace", type=int, default=Options.grace, help="JOB_MISFIRE_GRACE_TIME of the instances")
    p.add_argument("--pg-down", type=float, default=Options.pg_down, help="seconds PostgreSQL stays stopped")
    p.add_argument("--redis-down", type=float, default=Options.redis_down, help="seconds Redis stays stopped")
    p.add_argument("--max-workers", type=int, default=Options.max_workers, help="MAX_WORKERS per instance")
    p.add_argument("--workdir", type=Path, help="logs and runs file (default: a new temporary folder)")
    args = p.parse_args(argv)
    return Options(**vars(args))


def _setup_django() -> None:
    from django.apps import apps

    if not apps.ready:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scanner_project.settings")
        os.environ.setdefault("MIN_INTERVAL_SECONDS", "1")  # its schedules run every --interval seconds
        import django

        django.setup()


def make_schedules(count: int, interval: int) -> list:
    from schedules.models import Schedule

    if Schedule.objects.exists():
        # Refuse rather than mix with (or wipe) data that is not ours.
        raise SystemExit("the harness needs an empty, migrated throw-away database (bench/run.sh bench/fault_harness.py)")
    made = []
    for n in range(count):
        schedule = Schedule(domain_config_id=f"fault-{n}", domain=f"fault{n}.example.com", frequency="interval",
                            time_config={"seconds": interval})
        schedule.full_clean()
        made.append(schedule)
    Schedule.objects.bulk_create(made)
    return list(Schedule.objects.order_by("domain_config_id"))


def wait_for_database(timeout: float = 30.0) -> None:
    """After a PostgreSQL restart this process's pooled connection is dead:
    drop it and retry a trivial query until the server answers."""
    from django.db import DatabaseError, connection

    deadline = time.monotonic() + timeout
    while True:
        connection.close()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except DatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Fleet:
    """The instances of one run, on top of tests.cluster.Cluster (own process
    groups, bounded waits). Exit codes are kept for every process that was
    stopped with SIGTERM; SIGKILLed ones are left out."""

    def __init__(self, opts: Options, workdir: Path):
        from tests.cluster import Cluster

        self.runs_file = workdir / "runs.txt"
        self.cluster = Cluster(tmp=workdir, env={
            "SCAN_RUNNER": "tests.runners.sleepy_runner",
            "SCAN_TEST_RUNS_FILE": str(self.runs_file),
            "SCAN_TEST_SLEEP_MAX": str(opts.sleep_max),
            "LOCK_TIMEOUT": str(opts.lock_timeout),
            "JOB_MISFIRE_GRACE_TIME": str(opts.grace),
            "SHUTDOWN_GRACE_SECONDS": "10",
            "SCHEDULE_CHECK_INTERVAL": "30",
            "MAX_WORKERS": str(opts.max_workers),
            # Each running scan holds a pooled connection while it runs.
            "DB_POOL_MAX_SIZE": str(opts.max_workers + 5),
            "LOG_LEVEL": "info",
        })
        self.live: dict[str, object] = {}
        self.exit_codes: dict[str, int | None] = {}

    def start(self, slot: str, name: str, **env: str):
        instance = self.cluster.start(name, **env)
        self.live[slot] = instance
        return instance

    def wait_loaded(self, *instances) -> None:
        for instance in instances:
            self.cluster.wait_until_loaded(instance, timeout=LOAD_TIMEOUT)

    def kill(self, slot: str) -> None:
        self.cluster.kill(self.live.pop(slot))

    def signal(self, slot: str, signum: int) -> None:
        os.killpg(self.live[slot].process.pid, signum)

    def terminate(self, *slots: str) -> None:
        """SIGTERM to all of them first, then wait: they stop in parallel."""
        chosen = [self.live.pop(s) for s in slots]
        for instance in chosen:
            if instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in chosen:
            try:
                self.exit_codes[instance.name] = self.cluster.terminate(instance, timeout=STOP_TIMEOUT)
            except AssertionError:
                self.exit_codes[instance.name] = None  # did not stop: killed by terminate()

    def cleanup(self) -> None:
        self.cluster.stop_all()


def _now() -> datetime:
    return datetime.now(UTC)


def _sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def _fault_kill(fleet: Fleet, opts: Options):
    from bench.fault_checks import Fault

    started = _now()
    fleet.kill("a")
    fleet.wait_loaded(fleet.start("a", "inst-0-restarted"))
    return Fault("kill", started, started, "inst-0 (SIGKILL, restarted)")


def _fault_pause(fleet: Fleet, opts: Options):
    from bench.fault_checks import Fault

    started = _now()
    fleet.signal("b", signal.SIGSTOP)
    try:
        time.sleep(opts.lock_timeout * 1.5)
    finally:
        fleet.signal("b", signal.SIGCONT)
    return Fault("pause", started, _now(), f"inst-1 (SIGSTOP {opts.lock_timeout * 1.5:.0f} s)")


def _fault_redis(fleet: Fleet, opts: Options, services: set):
    from bench.fault_checks import Fault
    from tests.services_control import start_redis, stop_redis

    started = _now()
    services.add("redis")
    stop_redis()
    time.sleep(opts.redis_down)
    start_redis()
    services.discard("redis")
    return Fault("redis", started, _now(), f"restart ({opts.redis_down:.0f} s down)")


def _fault_postgres(fleet: Fleet, opts: Options, services: set):
    from bench.fault_checks import Fault
    from tests.services_control import start_postgres, stop_postgres

    started = _now()
    services.add("postgres")
    stop_postgres()
    time.sleep(opts.pg_down)
    start_postgres()
    services.discard("postgres")
    ended = _now()
    wait_for_database()
    return Fault("postgres", started, ended, f"restart ({opts.pg_down:.0f} s down)")


def _fault_clock(fleet: Fleet, opts: Options):
    from bench.fault_checks import Fault

    started = _now()
    fleet.terminate("c")
    fleet.wait_loaded(fleet.start("c", "inst-2-ahead", SCHEDULER_TEST_CLOCK_OFFSET=str(CLOCK_OFFSET)))
    return Fault("clock", started, _now(), f"inst-2 restarted {CLOCK_OFFSET:+.0f} s")


def _restore_services(services: set) -> None:
    from tests.services_control import start_postgres, start_redis

    if "redis" in services:
        start_redis()
    if "postgres" in services:
        start_postgres()
        wait_for_database()
    services.clear()


def run(opts: Options) -> Outcome:
    """One harness run. Every process it starts is gone when it returns."""
    from bench.fault_checks import evaluate, summary
    from tests.cluster import read_runs

    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="fault-harness-"))
    workdir.mkdir(parents=True, exist_ok=True)
    schedules = make_schedules(opts.schedules, opts.interval)
    fleet = Fleet(opts, workdir)
    services: set[str] = set()
    faults = []
    try:
        fleet.wait_loaded(*(fleet.start(slot, f"inst-{n}") for n, slot in enumerate("abc")))
        t0 = time.monotonic()
        start = _now() + timedelta(seconds=EDGE_MARGIN)
        plan = [(0.15, lambda: _fault_kill(fleet, opts)), (0.30, lambda: _fault_pause(fleet, opts)),
                (0.45, lambda: _fault_redis(fleet, opts, services)),
                (0.60, lambda: _fault_postgres(fleet, opts, services)), (0.75, lambda: _fault_clock(fleet, opts))]
        for fraction, inject in plan:
            _sleep_until(t0 + fraction * opts.duration)
            faults.append(inject())
            print(f"[{faults[-1].started:%H:%M:%S}] {faults[-1].kind}: {faults[-1].detail}", flush=True)
        _sleep_until(t0 + opts.duration)
        end = _now() - timedelta(seconds=EDGE_MARGIN)
        fleet.terminate(*list(fleet.live))
    finally:
        fleet.cleanup()
        _restore_services(services)
    wait_for_database()
    verdict = evaluate(schedules=schedules, start=start, end=end, runs=read_runs(fleet.runs_file), faults=faults,
                       exit_codes=fleet.exit_codes, grace=opts.grace, lock_timeout=opts.lock_timeout,
                       interval=opts.interval)
    return Outcome(verdict, summary(verdict, start=start, end=end), start, end, faults, workdir)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    _setup_django()
    started = time.monotonic()
    outcome = run(opts)
    print(f"\n{opts.schedules} schedules every {opts.interval} s, runner sleeps 0-{opts.sleep_max} s, "
          f"lock timeout {opts.lock_timeout} s, grace {opts.grace} s, {opts.duration:.0f} s of faults; "
          f"harness took {time.monotonic() - started:.0f} s; logs in {outcome.workdir}\n")
    print(outcome.table, flush=True)
    return 0 if outcome.verdict.ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
