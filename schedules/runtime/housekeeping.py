"""Housekeeping: the periodic chores of a scheduler process that are off the slot path.
Re-runs and expired pauses, history and audit retention, alerts; each one a (name, interval, task).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from .config import RuntimeConfig

Chore = tuple[str, float, Callable[[], object]]


def chores(config: RuntimeConfig, *, clock: Callable[[], datetime], alerts) -> list[Chore]:
    """What the main loop runs besides the slot path, at these intervals
    (seconds). The apps they belong to build on schedules, so they are
    imported here, once everything is loaded."""
    from audit.cleanup import cleanup_old_entries
    from history.cleanup import cleanup_if_due
    from pauses.services import close_expired
    from reruns.services import promote_waiting

    def history_cleanup() -> None:
        if cleanup_if_due(instance_id=config.instance_id) is not None:  # this instance's daily turn
            cleanup_old_entries(days=config.history_retention_days, now=clock())

    found: list[Chore] = [
        ("reruns", 1.0, promote_waiting),
        ("pauses", 10.0, lambda: close_expired(now=clock())),
        ("alerts", config.alert_check_interval, alerts.tick),
    ]
    if config.history_retention_days:
        found.append(("history_cleanup", 300.0, history_cleanup))
    return found
