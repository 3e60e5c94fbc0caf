"""Kept for SCAN_RUNNER paths and imports written before schedules.scans.

The runners live in schedules.scans (one module per kind of scan).
"""

from .scans import get_runner  # noqa: F401
from .scans.http_api import http_runner  # noqa: F401
from .scans.probe import probe_runner  # noqa: F401
from .scans.request import ScanRefused, ScanRequest, ScanResult, as_result, noop_runner  # noqa: F401
from .scans.retries import Outcome, run_with_retries  # noqa: F401
