"""Scans: what a run does once its slot is claimed and locked. The file names say what a scan can be.

- ``browser``: the default. Headless Chromium visits the site's pages, clicks
  the consent banner and records cookies, localStorage and the hosts contacted,
  before and after consent (browser.py, with chromium.py, egress.py, consent.py).
- ``probe`` (SCAN_RUNNER=probe): plain HTTP fetches of the home and custom
  pages, for hosts without a browser (probe.py).
- the scan API (SCAN_API_URL set): POSTs the domain and its settings (http_api.py).
- SCAN_RUNNER: ``browser``, ``probe``, ``noop``, or a dotted path to any callable
  taking a ScanRequest (request.py).

Every runner records the same ``scan`` shape (result.py), so the comparison
with the previous scan works whichever ran.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from schedules.scans.request import Runner, noop_runner


class ScannerUnavailable(ImproperlyConfigured):
    """The chosen runner cannot scan on this host (no browser, say); said at start-up."""


def _browser() -> Runner:
    from schedules.scans.browser import BrowserScanner

    return BrowserScanner.from_settings()


def _probe() -> Runner:
    from schedules.scans.probe import probe_runner

    return probe_runner


def _http_api() -> Runner:
    from schedules.scans.http_api import http_runner

    return http_runner


NAMED_RUNNERS = {"browser": _browser, "probe": _probe, "noop": lambda: noop_runner, "http": _http_api}


@lru_cache(maxsize=8)
def _load(path: str) -> Runner:
    return import_string(path)


def get_runner() -> Runner:
    """The runner SCAN_RUNNER names; else the scan API when SCAN_API_URL is
    set; else the browser. A browser runner is built here but starts Chromium
    only for its first scan."""
    if settings.SCAN_RUNNER:
        named = NAMED_RUNNERS.get(settings.SCAN_RUNNER.strip().lower())
        return named() if named else _load(settings.SCAN_RUNNER)
    if settings.SCAN_API_URL:
        return _http_api()
    return _browser()


def preflight(runner: Runner) -> None:
    """Raises ScannerUnavailable when the runner could not scan here."""
    check = getattr(runner, "preflight", None)
    if check is not None:
        check()


def close(runner: Runner) -> None:
    """Stops what the runner started (the browser); safe to call twice."""
    stop = getattr(runner, "close", None)
    if stop is not None:
        stop()
