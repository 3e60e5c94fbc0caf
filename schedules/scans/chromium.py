"""Chromium: the one browser process of a runscheduler, started on first use and restarted after a crash.

Started by this module rather than by Playwright's launch() because its
profile must allow third-party cookies (Playwright's contexts are incognito
ones, which block them; a visitor's browser does not), and that is a profile
preference. Playwright then drives it over CDP. The process runs in its own
process group, dies with its parent (setpriv --pdeathsig), and close() ends
the whole group, so no Chromium outlives runscheduler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("schedules.scans")

START_SECONDS = 30.0
# No name is resolved by Chromium itself: every connection goes to a scan's
# egress gateway, which resolves and checks (egress.py). The CDP endpoint is
# an address literal, the only direct connection.
FLAGS = (
    "--headless",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--mute-audio",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    # One --disable-features (Chromium reads only the last): no https:// try
    # before an http:// navigation; no page kept alive in the back-forward
    # cache after the scan moved on, and no spare renderer (memory: see
    # docs/benchmarks.md, browser scans).
    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter,Translate,"
    "BackForwardCache,SpareRendererForSitePerProcess",
)
# A visitor's browser keeps third-party cookies unless told otherwise; the
# contexts derived from this profile inherit it.
PREFERENCES = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}


class BrowserStartFailed(RuntimeError):
    pass


class ChromiumProcess:
    def __init__(self, *, executable: str, marker: str) -> None:
        self.executable = executable
        self.marker = marker  # on the command line, so an operator (or a test) can find our processes
        self.process: subprocess.Popen | None = None
        self.profile: Path | None = None
        self.browser = None  # playwright Browser

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return (self.process is not None and self.process.poll() is None
                and self.browser is not None and self.browser.is_connected())

    async def start(self, playwright) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="scanner-chromium-"))
        (self.profile / "Default").mkdir()
        (self.profile / "Default" / "Preferences").write_text(json.dumps(PREFERENCES))
        command = [self.executable, *FLAGS, f"--user-data-dir={self.profile}", f"--{self.marker}"]
        if os.geteuid() == 0:
            command.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        setpriv = shutil.which("setpriv")
        if setpriv:  # SIGKILL when runscheduler dies, even by SIGKILL
            command = [setpriv, "--pdeathsig", "KILL", "--", *command]
        command.append("about:blank")
        log = open(self.profile / "chromium.log", "wb")
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        finally:
            log.close()
        port = await self._devtools_port()
        self.browser = await playwright.chromium.connect_over_cdp(f"http://127.0.0.1:{port}",
                                                                  timeout=START_SECONDS * 1000)
        logger.info("Started Chromium (pid %s) for scans", self.process.pid)

    async def _devtools_port(self) -> int:
        written = self.profile / "DevToolsActivePort"
        ends = time.monotonic() + START_SECONDS
        while time.monotonic() < ends:
            if self.process.poll() is not None:
                raise BrowserStartFailed(f"Chromium exited with status {self.process.returncode} at start: "
                                         f"{self._log_tail()}")
            if written.exists():
                first = written.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            await asyncio.sleep(0.05)
        raise BrowserStartFailed(f"Chromium did not open its DevTools port within {START_SECONDS:g} s")

    def _log_tail(self) -> str:
        try:
            return (self.profile / "chromium.log").read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def close(self) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), timeout=5)
            except Exception:  # noqa: BLE001 - crashed or hung: the group is killed below
                pass
        self.kill()

    def kill(self) -> None:
        """The whole process group (browser, zygote, renderers), then the profile."""
        process, self.process = self.process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
