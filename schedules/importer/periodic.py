"""Periodic: one pass of the API import inside runscheduler, run on its own loop thread.
An import waits on the upstream API for up to API_SYNC_DEADLINE; on the main loop it froze heartbeats.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def sync_pass(*, instance_id: str, enabled: bool | None = None, interval: float | None = None) -> Any:
    """One interval's import (run_periodic_sync: one instance per interval
    imports), and its result to whoever counts failures in a row (alerts)."""
    from alerts.checks import note_sync_result
    from schedules.importer.apply import run_periodic_sync  # the import pulls in models: not at module load

    result = run_periodic_sync(instance_id=instance_id, enabled=enabled, interval=interval)
    note_sync_result(result, instance_id=instance_id)  # failures in a row alert
    return result
