"""Config: every setting a scan runner works with, read once when the runner is built.
``ScanConfig.from_settings()`` is the one place schedules.scans reads django.conf.settings.

The runners keep the fields they need from this object (get_runner builds
them from it), so no scan reads a setting on the slot path. A runner built
after a test overrides a setting sees the override; one built before keeps
what it was built with, as a running instance does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from scanner_project.outbound.addresses import Network, networks


@dataclass(frozen=True)
class ScanConfig:
    runner: str  # SCAN_RUNNER: a name (browser, probe, http, noop) or a dotted path; "" chooses
    api_url: str  # SCAN_API_URL: where the http runner POSTs; set, it is the default runner
    # SCAN_API_TOKEN: out of repr, so a logged or failing config never shows it.
    api_token: str = field(repr=False)
    deadline: float  # SCAN_DEADLINE: seconds for one whole scan
    browser_path: str  # SCAN_BROWSER_PATH: the Chromium executable
    scheme: str  # PROBE_SCHEME: of the pages a scan visits
    allow_private: bool  # PROBE_ALLOW_PRIVATE: may a scan connect to non-public addresses
    allowed_networks: tuple[Network, ...]  # PROBE_ALLOWED_NETWORKS: allowed although not public
    request_timeout: float  # REQUEST_TIMEOUT: connect and read timeout of each request
    max_response_bytes: int  # HTTP_MAX_RESPONSE_BYTES: a longer body fails the request
    api_pool_size: int  # MAX_WORKERS: kept-alive connections to the scan API

    @classmethod
    def from_settings(cls) -> ScanConfig:
        return cls(
            runner=settings.SCAN_RUNNER.strip(),
            api_url=settings.SCAN_API_URL,
            api_token=settings.SCAN_API_TOKEN,
            deadline=settings.SCAN_DEADLINE,
            browser_path=settings.SCAN_BROWSER_PATH,
            scheme=settings.PROBE_SCHEME,
            allow_private=settings.PROBE_ALLOW_PRIVATE,
            allowed_networks=networks(settings.PROBE_ALLOWED_NETWORKS),
            request_timeout=settings.REQUEST_TIMEOUT,
            max_response_bytes=settings.HTTP_MAX_RESPONSE_BYTES,
            api_pool_size=settings.MAX_WORKERS,
        )

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) for requests."""
        return (self.request_timeout, self.request_timeout)
