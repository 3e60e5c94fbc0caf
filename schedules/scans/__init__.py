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
with the previous scan works whichever ran. The settings reach the runners
through one ScanConfig (config.py), read when get_runner builds the runner.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from schedules.scans.config import ScanConfig
from schedules.scans.request import Runner, noop_runner


class ScannerUnavailable(ImproperlyConfigured):
    """The chosen runner cannot scan on this host (no browser, say); said at start-up."""


def _browser(config: ScanConfig) -> Runner:
    from schedules.scans.browser import BrowserScanner

    return BrowserScanner.from_config(config)


def _probe(config: ScanConfig) -> Runner:
    from schedules.scans.probe import ProbeScanner

    return ProbeScanner(config)


def _http_api(config: ScanConfig) -> Runner:
    from schedules.scans.http_api import ScanApiClient

    return ScanApiClient(config)


NAMED_RUNNERS: dict[str, Callable[[ScanConfig], Runner]] = {
    "browser": _browser, "probe": _probe, "noop": lambda config: noop_runner, "http": _http_api,
}

# SCAN_RUNNER paths of the built-in runners: built from the config like their
# names. The schedules.runners paths were written before schedules.scans
# existed (that module re-exported them) and keep working for those configs.
RUNNER_PATHS = {
    "schedules.scans.request.noop_runner": "noop",
    "schedules.scans.probe.probe_runner": "probe",
    "schedules.scans.http_api.http_runner": "http",
    "schedules.runners.noop_runner": "noop",
    "schedules.runners.probe_runner": "probe",
    "schedules.runners.http_runner": "http",
}


@lru_cache(maxsize=8)
def _load(path: str) -> Runner:
    return import_string(path)


def get_runner(*, config: ScanConfig | None = None) -> Runner:
    """The runner SCAN_RUNNER names; else the scan API when SCAN_API_URL is
    set; else the browser. Without ``config`` the settings are read here, once.
    A browser runner is built here but starts Chromium only for its first scan."""
    config = config if config is not None else ScanConfig.from_settings()
    if config.runner:
        name = RUNNER_PATHS.get(config.runner, config.runner.lower())
        build = NAMED_RUNNERS.get(name)
        return build(config) if build else _load(config.runner)
    if config.api_url:
        return _http_api(config)
    return _browser(config)


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
