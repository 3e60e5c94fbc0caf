"""Visit: one scan in one fresh browser context, page by page, before and after consent.

Every page of the plan is loaded in turn. On the first page that shows the
accept button it is clicked; what was seen until then (cookies, localStorage,
hosts contacted) is ``before_consent``, everything first seen later
``after_consent``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError

from schedules.scans import consent, result
from schedules.scans.egress import Gateway
from schedules.scans.parties import host_of, site_of
from schedules.scans.plan import Frontier, ScanPlan
from schedules.scans.request import ScanRefused

logger = logging.getLogger("schedules.scans")

SETTLE_MS = 3000  # after "load" or a click, how long to wait at most for the network to go quiet
QUIET_MS = 500  # the network is quiet when no request was in flight for this long
CONSENT_WAIT_MS = 2000  # on the first page, how long a banner may take to appear
_STORAGE_JS = """() => { try { return [location.origin, Object.keys(window.localStorage)]; }
                        catch (e) { return [location.origin, []]; } }"""
_LINKS_JS = "els => els.map(e => e.href).filter(Boolean)"


class Visit:
    def __init__(self, *, context, gateway: Gateway, plan: ScanPlan, domain: str, ends_at: float) -> None:
        self.context = context
        self.gateway = gateway
        self.plan = plan
        self.site = site_of(host_of(domain))
        self.domain = domain
        self.ends_at = ends_at
        self.phase = result.BEFORE_CONSENT
        self.hosts: set[tuple[str, str]] = set()
        self.storage: dict[tuple[str, str], str] = {}
        self.cookies_before: list[dict] | None = None
        self.pages: list[dict] = []
        self.consent = {**result.no_consent(plan.accept_selector)}
        self._in_flight = 0
        self._last_activity = time.monotonic()
        context.on("request", self._request_started)
        context.on("requestfinished", self._request_ended)
        context.on("requestfailed", self._request_ended)
        context.on("page", lambda page: page.on("websocket", lambda ws: self._contacted(ws.url)))

    def _request_started(self, request) -> None:
        self._in_flight += 1
        self._last_activity = time.monotonic()
        self._contacted(request.url)

    def _request_ended(self, _request) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._last_activity = time.monotonic()

    def _contacted(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname:
            self.hosts.add((parts.hostname.lower(), self.phase))

    def _remaining_ms(self) -> float:
        return max(1.0, (self.ends_at - time.monotonic()) * 1000)

    def _navigation_ms(self) -> float:
        # A second past the scan's deadline: the deadline itself (browser.py)
        # ends a page that never loads, and says so.
        return self._remaining_ms() + 1000

    async def run(self) -> dict:
        page = await self.context.new_page()
        frontier = Frontier(self.plan)
        first = True
        while (item := frontier.next()) is not None:
            url, depth = item
            refused_before = len(self.gateway.refused)
            try:
                response = await page.goto(url, wait_until="load", timeout=self._navigation_ms())
            except PlaywrightError as exc:
                refused = list(self.gateway.refused.values())[refused_before:]
                if first:
                    if refused:
                        raise ScanRefused(refused[0]) from None
                    raise
                self.pages.append({"url": url, "depth": depth, "status": None,
                                   "error": "refused by the address policy" if refused else _first_line(exc)})
                continue
            await self._settle(page)
            self.pages.append({"url": url, "depth": depth, "status": response.status if response else None})
            await self._read_storage(page)
            if not self.consent["found"] and "error" not in self.consent:
                await self._consent(page, wait_ms=CONSENT_WAIT_MS if first else 0)
            if self.plan.deep:
                links = await page.eval_on_selector_all("a[href]", _LINKS_JS)
                frontier.found_links(links, on_page=page.url, depth=depth)
            first = False
        return await self._record()

    async def _settle(self, page) -> None:
        """Until no request has been in flight for QUIET_MS, for SETTLE_MS at
        most: what a page (or a click) starts after "load" is seen too. Playwright's
        "networkidle" cannot serve here: once reached it stays reached, so it
        would not wait for what the consent click loads."""
        ends = time.monotonic() + min(SETTLE_MS, self._remaining_ms()) / 1000
        while time.monotonic() < ends:
            if self._in_flight == 0 and time.monotonic() - self._last_activity >= QUIET_MS / 1000:
                return
            await asyncio.sleep(0.05)

    async def _read_storage(self, page) -> None:
        for frame in page.frames:
            try:
                origin, keys = await asyncio.wait_for(frame.evaluate(_STORAGE_JS), timeout=5)
            except (PlaywrightError, asyncio.TimeoutError):
                continue  # a frame that went away, or is busy: its keys show on a later read
            if origin and origin != "null":
                for key in keys:
                    self.storage.setdefault((origin, str(key)), self.phase)

    async def _consent(self, page, *, wait_ms: float) -> None:
        try:
            found = await consent.find(page, self.plan.accept_selector, wait_ms=wait_ms)
        except ValueError as exc:
            self.consent["error"] = str(exc)  # and no other page is searched
            return
        if found is None:
            return
        locator, selector, manager = found
        self.consent.update(found=True, selector=selector)
        if manager:
            self.consent["manager"] = manager
        # Everything until the click is what a visitor gets without consenting.
        self.cookies_before = await self.context.cookies()
        await self._read_storage(page)
        # Requests the click starts may be reported before click() returns.
        self.phase = result.AFTER_CONSENT
        problem = await consent.click(locator)
        if problem:
            self.phase = result.BEFORE_CONSENT
            self.cookies_before = None
            self.consent["error"] = problem
            return
        self.consent["clicked"] = True
        await self._settle(page)
        await self._read_storage(page)

    async def _record(self) -> dict:
        before = {result.cookie_key(_cookie_fields(c)) for c in self.cookies_before or []}
        cookies = []
        for raw in await self.context.cookies():
            fields = _cookie_fields(raw)
            phase = (result.BEFORE_CONSENT if self.cookies_before is None or result.cookie_key(fields) in before
                     else result.AFTER_CONSENT)
            cookies.append(result.cookie_record(site=self.site, phase=phase, **fields))
        refused = self.gateway.refused
        hosts = [(host, phase) for host, phase in self.hosts if host not in refused or host in self.gateway.reached]
        return result.scan_record(
            domain=self.domain, pages=self.pages, cookies=cookies,
            storage=[{"origin": origin, "key": key, "phase": phase} for (origin, key), phase in self.storage.items()],
            requests=result.request_records(hosts, site=self.site),
            consent=self.consent,
            refused=[{"host": host, "reason": reason} for host, reason in sorted(refused.items())],
        )


def _cookie_fields(raw: dict) -> dict:
    return {"name": raw["name"], "domain": raw.get("domain", ""), "path": raw.get("path", "/"),
            "expires": raw.get("expires"), "secure": raw.get("secure", False),
            "http_only": raw.get("httpOnly", False), "same_site": raw.get("sameSite", "")}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:300]
