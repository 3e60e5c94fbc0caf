"""Housekeeping: the periodic chores of a scheduler process that are off the slot path.
History retention is the runtime's own; the apps built on schedules add theirs through
``schedules.hooks.register_chore`` (re-runs, expired pauses, alerts, the audit
trail's pruning): schedules never imports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from history.cleanup import cleanup_if_due
from schedules.hooks import Chore, build_chores
from schedules.runtime.config import RuntimeConfig


def chores(config: RuntimeConfig, *, clock: Callable[[], datetime]) -> list[Chore]:
    """What the main loop runs besides the slot path, at these intervals (seconds)."""
    found: list[Chore] = []
    if config.history_retention_days:
        found.append(Chore("history_cleanup", 300.0, lambda: cleanup_if_due(instance_id=config.instance_id)))
    return [*found, *build_chores(config, clock=clock)]
