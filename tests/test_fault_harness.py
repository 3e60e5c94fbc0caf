"""The CI version of the fault harness (bench/fault_harness.py): three real
`runscheduler` processes, 30 schedules, every fault of the full run, in about
90 seconds. The full run is bench/run.sh bench/fault_harness.py (docs/benchmarks/faults.md)."""

import subprocess

import pytest

from bench.fault_harness import Options, run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _own_children() -> str:
    """runscheduler processes whose parent is this test process, if any."""
    import os

    out = subprocess.run(["ps", "-o", "pid=,ppid=,args=", "-e"], capture_output=True, text=True, timeout=10).stdout
    return "\n".join(line for line in out.splitlines()
                     if "runscheduler" in line and line.split()[1] == str(os.getpid()))


def test_faults_lose_no_slot_and_run_none_twice(tmp_path):
    outcome = run(Options(duration=80, schedules=30, interval=2, sleep_max=1.5, lock_timeout=4, grace=5,
                          pg_down=7, redis_down=3, max_workers=20, workdir=tmp_path))
    print(outcome.table)
    v = outcome.verdict
    assert [f.kind for f in outcome.faults] == ["kill", "pause", "redis", "postgres", "clock"]
    assert v.expected >= 30 * 30, outcome.table
    assert not v.duplicates, outcome.table
    assert not v.runs_without_claim, outcome.table
    assert not v.unexplained, outcome.table
    assert v.left_running == 0, outcome.table
    assert len(v.exit_codes) == 4 and not v.bad_exit_codes, outcome.table
    # Most slots still ran. (Abandoned runs are not required: a SIGKILL may land
    # between scans, and a frozen instance that resumes records its scans as
    # finished; tests/test_runscheduler_cluster.py proves the abandoned path.)
    assert v.run >= 0.8 * v.expected, outcome.table
    assert v.ok
    assert _own_children() == ""
