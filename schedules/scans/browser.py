"""Browser: the default runner. One Chromium per process, a fresh context per scan.

Playwright's asyncio API runs on one thread of its own ("scan-browser"); the
scan workers hand it their scans and wait, so up to MAX_WORKERS scans share
the browser at once. SCAN_DEADLINE bounds a whole scan: when it passes the
context is closed, which ends a page that never finishes loading or a script
that loops. A browser that crashed or hung is started again for the next
scan; the scan it took down fails and is retried under maxRetries.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from scanner_project.outbound.http import DeadlineExceeded
from schedules.scans import ScannerUnavailable
from schedules.scans.config import Network, ScanConfig
from schedules.scans.request import ScanRequest, ScanResult

logger = logging.getLogger("schedules.scans")

CLOSE_SECONDS = 5.0  # closing a context or the browser; past it the browser is killed
MARKER = "scanner-runscheduler-pid"


@dataclass(frozen=True)
class BrowserConfig:
    """The part of a ScanConfig the browser scanner keeps."""

    executable: str
    deadline: float
    scheme: str
    allow_private: bool
    allowed_networks: tuple[Network, ...]
    connect_timeout: float

    @classmethod
    def of(cls, config: ScanConfig) -> BrowserConfig:
        return cls(
            executable=config.browser_path, deadline=config.deadline, scheme=config.scheme,
            allow_private=config.allow_private, allowed_networks=config.allowed_networks,
            connect_timeout=config.request_timeout,
        )


class BrowserScanner:
    """A runner (callable with a ScanRequest) that owns its browser thread."""

    def __init__(self, config: BrowserConfig) -> None:
        self.config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self._playwright = None
        self._chromium = None  # chromium.ChromiumProcess
        self._launching: asyncio.Lock | None = None
        self.launches = 0

    @classmethod
    def from_config(cls, config: ScanConfig) -> BrowserScanner:
        return cls(BrowserConfig.of(config))

    # --- the runner ----------------------------------------------------------
    def __call__(self, request: ScanRequest) -> ScanResult:
        loop = self._ensure_thread()
        future = asyncio.run_coroutine_threadsafe(self._scan(request), loop)
        try:
            # The coroutine ends itself at the deadline; this bound is for a
            # browser that no longer answers even that.
            return future.result(timeout=self.config.deadline + 2 * CLOSE_SECONDS + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            asyncio.run_coroutine_threadsafe(self._restart("a scan outlived its deadline"), loop)
            raise DeadlineExceeded(f"did not finish within the deadline of {self.config.deadline:g} s") from None

    def preflight(self) -> None:
        """Refuses to start a scheduler that could only fail its scans."""
        path = self.config.executable
        how = ("Install Chromium (Debian: apt-get install chromium; scripts/start.sh does it), set "
               "SCAN_BROWSER_PATH to its executable, or choose another runner: SCAN_RUNNER=probe "
               "(plain HTTP, no JavaScript) or SCAN_API_URL (a scan service)")
        found = shutil.which(path)
        if not found:
            raise ScannerUnavailable(f"SCAN_BROWSER_PATH={path!r}: no Chromium there. {how}.")
        try:
            version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ScannerUnavailable(f"SCAN_BROWSER_PATH={path!r} does not run ({exc}). {how}.") from None
        logger.info("Scans run in %s", version.stdout.strip() or found)

    def close(self) -> None:
        """Closes the browser and its thread; no Chromium process is left."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=3 * CLOSE_SECONDS)
        except Exception:  # noqa: BLE001 - kill what is left, whatever happened
            if self._chromium is not None:
                self._chromium.kill()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_SECONDS)
        self._loop = self._thread = None

    @property
    def browser_pid(self) -> int | None:
        return self._chromium.pid if self._chromium is not None else None

    # --- the browser thread ---------------------------------------------------
    def _ensure_thread(self) -> asyncio.AbstractEventLoop:
        with self._started:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                # The thread that starts Chromium must live as long as it:
                # --pdeathsig follows the starting thread.
                self._thread = threading.Thread(target=run, name="scan-browser", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
                self._launching = asyncio.Lock()
        return self._loop

    async def _browser(self):
        from playwright.async_api import async_playwright

        from schedules.scans.chromium import ChromiumProcess

        async with self._launching:
            if self._chromium is not None and self._chromium.alive():
                return self._chromium.browser
            if self._chromium is not None:
                logger.warning("Chromium (pid %s) is gone; starting it again", self._chromium.pid)
                self._chromium.kill()
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            chromium = ChromiumProcess(executable=self.config.executable, marker=f"{MARKER}={os.getpid()}")
            self._chromium = chromium
            await chromium.start(self._playwright)
            self.launches += 1
            return chromium.browser

    async def _restart(self, why: str) -> None:
        async with self._launching:
            if self._chromium is not None:
                logger.warning("Restarting Chromium: %s", why)
                await self._chromium.close()
                self._chromium = None

    async def _shutdown(self) -> None:
        if self._chromium is not None:
            await self._chromium.close()
            self._chromium = None
        if self._playwright is not None:
            try:
                await asyncio.wait_for(self._playwright.stop(), timeout=CLOSE_SECONDS)
            except Exception:  # noqa: BLE001 - the driver process goes with the loop
                pass
            self._playwright = None

    async def _scan(self, request: ScanRequest) -> ScanResult:
        from schedules.scans.egress import Gateway
        from schedules.scans.plan import ScanPlan
        from schedules.scans.visit import Visit

        ends_at = time.monotonic() + self.config.deadline
        plan = ScanPlan.of(domain=request.domain, scheme=self.config.scheme, scan_settings=request.scan_settings)
        gateway = Gateway(allow_private=self.config.allow_private, allowed_networks=self.config.allowed_networks,
                          ends_at=ends_at, connect_timeout=self.config.connect_timeout)
        context = None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.deadline):
                browser = await self._browser()
                proxy = await gateway.start()
                context = await browser.new_context(proxy={"server": proxy}, service_workers="block",
                                                    accept_downloads=False)
                scan = await Visit(context=context, gateway=gateway, plan=plan, domain=request.domain,
                                   ends_at=ends_at).run()
        except TimeoutError:
            raise DeadlineExceeded(f"did not finish within the deadline of {self.config.deadline:g} s") from None
        finally:
            if context is not None:
                try:
                    await asyncio.wait_for(context.close(), timeout=CLOSE_SECONDS)
                except Exception:  # noqa: BLE001 - a renderer that no longer answers
                    await self._restart("a scan's context did not close")
            await gateway.close()
        metadata = {"runner": "browser", "scan": scan, "seconds": round(time.monotonic() - started, 3)}
        return ScanResult(scan_id="", metadata=metadata)
