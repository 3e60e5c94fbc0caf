"""Kept for SCAN_RUNNER paths and imports written before schedules.scans.

The runners live in schedules.scans (one module per kind of scan).
"""

from schedules.scans import get_runner  # noqa: F401
from schedules.scans.http_api import http_runner  # noqa: F401
from schedules.scans.probe import probe_runner  # noqa: F401
from schedules.scans.request import ScanRefused, ScanRequest, ScanResult, as_result, noop_runner  # noqa: F401
from schedules.scans.retries import Outcome, run_with_retries  # noqa: F401
