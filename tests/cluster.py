"""Start and stop real `runscheduler` processes for multi-process tests.

Every process is started in its own process group, bounded in time, and
killed by ``stop_all`` whatever happens to the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@dataclass
class Instance:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    tmp: Path
    env: dict = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)

    def start(self, name: str, *args: str, **extra_env: str) -> Instance:
        # MIN_INTERVAL_SECONDS: the tests' schedules run every second (conftest.py).
        env = {**os.environ, "DATABASE_URL": test_database_url(), "SCAN_TEST_INSTANCE": name,
               "PYTHONUNBUFFERED": "1", "MIN_INTERVAL_SECONDS": "1", **self.env, **extra_env}
        log_path = self.tmp / f"{name}.log"
        # An instance whose clock is off starts through the test launcher.
        launcher = ["-m", "tests.clock_offset"] if "SCHEDULER_TEST_CLOCK_OFFSET" in env else ["manage.py"]
        process = subprocess.Popen(
            [sys.executable, *launcher, "runscheduler", "--instance-id", name, *args],
            cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        instance = Instance(name, process, log_path)
        self.instances.append(instance)
        return instance

    def wait_until_loaded(self, instance: Instance, *, timeout: float = 20.0) -> None:
        self.wait_for_log(instance, "Loaded", timeout=timeout)

    def wait_for_log(self, instance: Instance, text: str, *, timeout: float = 20.0, count: int = 1) -> None:
        """Wait until ``text`` appears ``count`` times in the instance's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if instance.log().count(text) >= count:
                return
            if instance.process.poll() is not None:
                raise AssertionError(f"{instance.name} exited early:\n{instance.log()}")
            time.sleep(0.05)
        raise AssertionError(f"{instance.name} did not log {text!r} within {timeout} s:\n{instance.log()[-4000:]}")

    def terminate(self, instance: Instance, *, timeout: float = 20.0) -> int:
        if instance.process.poll() is None:
            instance.process.send_signal(signal.SIGTERM)
        try:
            return instance.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(instance.process.pid, signal.SIGKILL)
            instance.process.wait(timeout=5)
            raise AssertionError(f"{instance.name} did not stop within {timeout} s:\n{instance.log()}") from None

    def kill(self, instance: Instance) -> None:
        os.killpg(instance.process.pid, signal.SIGKILL)
        instance.process.wait(timeout=10)

    def stop_all(self) -> None:
        for instance in self.instances:
            if instance.process.poll() is None:
                try:
                    os.killpg(instance.process.pid, signal.SIGCONT)
                    os.killpg(instance.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                instance.process.wait(timeout=10)


def read_runs(path: Path) -> list[tuple[str, str, str]]:
    """(schedule_id, slot, instance) of each run, a repeated Idempotency-Key
    once (tests.runners)."""
    if not path.exists():
        return []
    runs, keys = [], set()
    for line in path.read_text().splitlines():
        if line.strip():
            schedule_id, slot, instance, key = line.split(" ")
            if key not in keys:
                keys.add(key)
                runs.append((schedule_id, slot, instance))
    return runs
