"""Scan runners for the multi-process tests, selected with SCAN_RUNNER.

Each run appends "schedule_id slot instance idempotency-key" to
SCAN_TEST_RUNS_FILE, so the tests count real runs, not only history rows.
Like a scan API that honours Idempotency-Key, tests.cluster.read_runs counts a
repeated key (a run delivered again after its instance died) once.
"""

import os
import random
import time

from schedules.scans.request import ScanResult


def _record(request) -> None:
    path = os.environ.get("SCAN_TEST_RUNS_FILE")
    if path:
        slot = request.scheduled_for.isoformat() if request.scheduled_for else "manual"
        line = f"{request.schedule_id} {slot} {os.environ.get('SCAN_TEST_INSTANCE', '')} {request.idempotency_key}\n"
        with open(path, "a") as handle:  # O_APPEND: whole lines from many processes
            handle.write(line)


def recording_runner(request):
    _record(request)
    return ScanResult(scan_id=f"scan-{request.execution_id}", metadata={"runner": "recording"})


def settings_echo_runner(request):
    """Records the scan settings the run was given in its metadata."""
    _record(request)
    return ScanResult(scan_id=f"scan-{request.execution_id}", metadata={"scan_settings": request.scan_settings})


def sleepy_runner(request):
    """Sleeps SCAN_TEST_SLEEP_MAX seconds at most (random), or the schedule's
    own scan_settings["sleep"]."""
    _record(request)
    pause = request.scan_settings.get("sleep")
    if pause is None:
        pause = random.uniform(0, float(os.environ.get("SCAN_TEST_SLEEP_MAX", "0.5")))
    time.sleep(float(pause))
    return ScanResult(scan_id=f"scan-{request.execution_id}", metadata={"runner": "sleepy", "slept": pause})


def failing_runner(request):
    _record(request)
    raise ConnectionError(f"scan API unreachable for {request.domain}")


def flaky_runner(request):
    """Fails while the schedule's scan_settings say {"fail": true}."""
    _record(request)
    if request.scan_settings.get("fail"):
        raise ConnectionError(f"scan API unreachable for {request.domain}")
    return ScanResult(scan_id=f"scan-{request.execution_id}", metadata={"runner": "flaky"})
