"""README command 1: scripts/start.sh brings up admin and a scheduler on the embedded default."""

import os
import re
import signal
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_start_script_serves_admin_and_runs_a_scheduler(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path}/first-try.sqlite3",
                "HEALTHZ_TOKEN": "start-script-monitor"})
    log = tmp_path / "start.log"
    process = subprocess.Popen(["scripts/start.sh"], cwd=ROOT, env=env, stdout=open(log, "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return fetch(f"http://127.0.0.1:{port}/healthz")[0] == 200
            except OSError:
                return False

        # Generous: a first start migrates a new database, and CI machines can be busy.
        wait_until(healthy, timeout=300, interval=0.5, message=log.read_text)
        output = log.read_text()
        password = re.search(r"created admin user 'admin' with password: (\S+)", output).group(1)
        assert len(password) >= 12
        assert "locks in local (no Redis configured: single instance only)" in output
        status, body = fetch(f"http://127.0.0.1:{port}/admin/login/")
        assert status == 200 and "Django administration" in body
        assert fetch(f"http://127.0.0.1:{port}/healthz")[1] == '{"status": "ok"}'  # anonymous: status only
        details = fetch(f"http://127.0.0.1:{port}/healthz", {"Authorization": "Bearer start-script-monitor"})[1]
        assert '"redis"' in details
        assert stat.S_IMODE((tmp_path / "first-try.sqlite3").stat().st_mode) == 0o600
    finally:
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, signum)
                process.wait(timeout=30)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue  # on to SIGKILL
