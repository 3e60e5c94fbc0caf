"""README command 1: scripts/start.sh brings up admin and a scheduler on the embedded default."""

import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
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
        _first_scan_shows_its_cookie_table(port, password, env, tmp_path / "first-try.sqlite3")
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


def _first_scan_shows_its_cookie_table(port: int, password: str, env: dict, database: Path) -> None:
    """A newcomer's first try: a schedule for a site on this machine, "Run now"
    in admin, and the execution page shows the cookies within a minute."""
    from tests.scan_site import ScanSite

    with ScanSite() as site:
        domain = site["site"].domain
        subprocess.run([sys.executable, "manage.py", "shell", "-c",
                        "from schedules.models import Schedule; "
                        f"s = Schedule(domain_config_id='first-try', domain='{domain}', frequency='daily', "
                        "time_config={'hour': 3, 'minute': 0}, scan_settings={'accept_selector': '#accept'}); "
                        "s.full_clean(); s.save()"], cwd=ROOT, env=env, check=True, timeout=60)
        schedule_id = _one(database, "SELECT schedule_id FROM schedules WHERE domain_config_id = 'first-try'")
        admin = _AdminSession(f"http://127.0.0.1:{port}")
        admin.login("admin", password)
        page = admin.post("/admin/schedules/schedule/", {"action": "run_now", "_selected_action": schedule_id,
                                                         "index": "0"})
        assert "Queued 1 manual run" in page, page[-2000:]

        def finished():
            return _one(database, "SELECT execution_id FROM job_executions WHERE status IN ('success', 'failed')")

        execution_id = wait_until(finished, timeout=60, interval=0.5, message="the manual run finished")
        page = admin.get(f"/admin/history/jobexecution/{execution_id}/change/")
        assert "success" in page
        for cookie in ("sid", "_ga", "tp_uid", "consent", "ads_id"):
            assert f"<td>{cookie}</td>" in page, cookie


def _one(database: Path, sql: str):
    with sqlite3.connect(database, timeout=20) as db:
        row = db.execute(sql).fetchone()
    return row[0] if row else None


class _AdminSession:
    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict) -> str:
        self.get(path)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self._csrf()}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def login(self, username: str, password: str) -> None:
        self.post("/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"})
        assert any(c.name == "sessionid" for c in self.jar), "logged in"
