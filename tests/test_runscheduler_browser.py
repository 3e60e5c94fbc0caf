"""`runscheduler` with the default runner: a real browser scan, and no Chromium left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from history.models import ExecutionStatus, JobExecution
from history.queue import queue_manual_run
from schedules.models import Schedule
from tests import cluster as clusters
from tests.cluster import ROOT, Cluster
from tests.scan_site import ScanSite
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site():
    with ScanSite() as running:
        yield running


@pytest.fixture
def cluster(tmp_path):
    # No SCAN_RUNNER and no SCAN_API_URL: the browser is the default.
    c = Cluster(tmp=tmp_path, env={"SCAN_RUNNER": "", "SCAN_API_URL": "", "PROBE_SCHEME": "http",
                                   "PROBE_ALLOWED_NETWORKS": "127.0.0.0/8", "SHUTDOWN_GRACE_SECONDS": "5",
                                   "LOCK_TIMEOUT": "6", "MAX_WORKERS": "2"})
    yield c
    c.stop_all()


def chromium_of(pid: int) -> list[int]:
    marker = f"scanner-runscheduler-pid={pid}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def run_now(site) -> JobExecution:
    schedule = Schedule(domain_config_id="browser-1", domain=site["site"].domain, frequency="daily",
                        time_config={"hour": 3, "minute": 0}, scan_settings={"accept_selector": "#accept"})
    schedule.full_clean()
    schedule.save()
    execution_id = queue_manual_run(schedule_id=schedule.schedule_id, domain=schedule.domain,
                                    domain_config_id=schedule.domain_config_id, requested_by="test")
    return wait_until(lambda: JobExecution.objects.filter(execution_id=execution_id,
                                                          status__in=(ExecutionStatus.SUCCESS,
                                                                      ExecutionStatus.FAILED)).first(),
                      timeout=60, message="the manual run finished")


def test_the_default_runner_scans_in_a_browser_and_sigterm_closes_it(site, cluster):
    instance = cluster.start("browser")
    cluster.wait_until_loaded(instance)
    execution = run_now(site)
    assert execution.status == ExecutionStatus.SUCCESS, execution.error_message
    scan = execution.metadata["scan"]
    assert execution.metadata["runner"] == "browser"
    assert {c["name"] for c in scan["cookies"]} >= {"sid", "_ga", "consent", "ads_id"}
    assert chromium_of(instance.process.pid)
    assert cluster.terminate(instance) == 0
    assert chromium_of(instance.process.pid) == []


def test_chromium_dies_with_a_killed_runscheduler(site, cluster):
    instance = cluster.start("killed")
    cluster.wait_until_loaded(instance)
    assert run_now(site).status == ExecutionStatus.SUCCESS
    pid = instance.process.pid
    assert chromium_of(pid)
    instance.process.kill()  # SIGKILL to runscheduler alone: its shutdown code never runs
    instance.process.wait(timeout=10)
    wait_until(lambda: not chromium_of(pid), timeout=15, message=lambda: f"left: {chromium_of(pid)}")


def test_runscheduler_refuses_to_start_without_chromium(db):
    env = {**os.environ, "DATABASE_URL": clusters.test_database_url(), "SCAN_RUNNER": "", "SCAN_API_URL": "",
           "SCAN_BROWSER_PATH": "/nonexistent/chromium"}
    done = subprocess.run([sys.executable, "manage.py", "runscheduler"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "SCAN_BROWSER_PATH='/nonexistent/chromium'" in done.stderr
    assert "apt-get install chromium" in done.stderr and "SCAN_RUNNER=probe" in done.stderr
    # The probe needs no browser.
    env["SCAN_RUNNER"] = "probe"
    probe = subprocess.Popen([sys.executable, "manage.py", "runscheduler", "--instance-id", "probe-only"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: probe.poll() is None and _heartbeat("probe-only"), timeout=30,
                   message="the probe instance started")
    finally:
        probe.send_signal(signal.SIGTERM)
        assert probe.wait(timeout=30) == 0


def _heartbeat(instance_id: str) -> bool:
    from schedules.models import SchedulerInstance

    return SchedulerInstance.objects.filter(instance_id=instance_id).exists()
