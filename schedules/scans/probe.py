"""Probe: the scan for hosts without a browser (SCAN_RUNNER=probe).

It fetches the home page and the custom pages over plain HTTP and records the
cookies their Set-Cookie headers set: no script runs, no link is followed and
no banner is clicked, so everything it finds is ``before_consent``.
"""

from __future__ import annotations

from urllib.parse import urljoin

import requests

from scanner_project.outbound.addresses import AddressRefused, refuse_ambiguous_url
from scanner_project.outbound.http import BoundedSession, build_session, read_body
from scanner_project.redaction import redact_userinfo
from schedules.scans import result
from schedules.scans.config import ScanConfig
from schedules.scans.parties import host_of, site_of
from schedules.scans.plan import ScanPlan
from schedules.scans.request import ScanRefused, ScanRequest, ScanResult

MAX_REDIRECTS = 5


class ProbeScanner:
    """The probe runner (callable with a ScanRequest), built from a ScanConfig."""

    def __init__(self, config: ScanConfig) -> None:
        self.config = config

    def __call__(self, request: ScanRequest) -> ScanResult:
        config = self.config
        plan = ScanPlan.of(domain=request.domain, scheme=config.scheme, scan_settings=request.scan_settings)
        site = site_of(host_of(request.domain))
        cookies: dict[tuple, dict] = {}
        pages, hosts = [], set()
        session = build_session(
            token="", retries=1, backoff=0.5, deadline=config.deadline,
            public_only=not config.allow_private, allowed_networks=config.allowed_networks,
        )
        with session:
            for url in (plan.home, *plan.custom_pages)[: plan.max_pages]:
                final_url, status, jar, seen = self._fetch_following_redirects(session, url)
                hosts.update(seen)
                pages.append({"url": url, "depth": 0, "status": status, "final_url": final_url})
                for cookie in jar:
                    record = result.cookie_record(site=site, phase=result.BEFORE_CONSENT, **cookie)
                    cookies.setdefault(result.cookie_key(record), record)
        scan = result.scan_record(
            domain=request.domain, pages=pages, cookies=list(cookies.values()), storage=[],
            requests=result.request_records(((h, result.BEFORE_CONSENT) for h in hosts), site=site),
            consent=result.no_consent(plan.accept_selector),
        )
        return ScanResult(scan_id="", metadata={"runner": "probe", "scan": scan})

    def _fetch_following_redirects(self, session: BoundedSession, url: str) -> tuple[str, int, list[dict], set[str]]:
        # Redirects are followed by hand so that every hop's URL is checked; every
        # connection's address is checked by the session itself (scanner_project.outbound.http).
        jar: list[dict] = []
        hosts: set[str] = set()
        for _ in range(MAX_REDIRECTS + 1):
            try:
                refuse_ambiguous_url(url)
                with session.get(url, timeout=self.config.timeouts, allow_redirects=False, stream=True) as response:
                    hosts.add(host_of(url))
                    read_body(response, max_bytes=self.config.max_response_bytes, deadline=session.deadline)
                    jar.extend(_cookies_of(response))
                    if response.is_redirect and response.headers.get("location"):
                        url = urljoin(url, response.headers["location"])
                        continue
                    return url, response.status_code, jar, hosts
            except AddressRefused as exc:
                raise ScanRefused(str(exc)) from None
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {redact_userinfo(url)}")


def probe_runner(request: ScanRequest) -> ScanResult:
    """One probe scan with the settings as they are now, for a single call
    (tests, a script). get_runner builds a ProbeScanner once instead, also
    for a SCAN_RUNNER path that names this function."""
    return ProbeScanner(ScanConfig.from_settings())(request)


def _cookies_of(response: requests.Response) -> list[dict]:
    found = []
    for cookie in response.cookies:
        rest = {k.lower(): v for k, v in getattr(cookie, "_rest", {}).items()}
        found.append({
            "name": cookie.name, "domain": cookie.domain, "path": cookie.path, "expires": cookie.expires,
            "secure": bool(cookie.secure), "http_only": "httponly" in rest, "same_site": rest.get("samesite") or "",
        })
    return found
