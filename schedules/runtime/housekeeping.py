"""Housekeeping: the periodic chores of a scheduler process that are off the slot path.
Re-runs and expired pauses, history retention, alerts; each one a (name, interval, task).
Apps built on schedules add their own chores through ``register_chore`` (the
audit trail's pruning): schedules never imports them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from schedules.runtime.config import RuntimeConfig

Chore = tuple[str, float, Callable[[], object]]
# (config, clock=...) -> its chore, or None when it is off.
ChoreBuilder = Callable[..., Optional[Chore]]

_registered: list[ChoreBuilder] = []


def register_chore(builder: ChoreBuilder) -> None:
    """Called from an AppConfig.ready(); each builder once, however often ready() runs."""
    if builder not in _registered:
        _registered.append(builder)


def chores(config: RuntimeConfig, *, clock: Callable[[], datetime], alerts) -> list[Chore]:
    """What the main loop runs besides the slot path, at these intervals
    (seconds). The apps they belong to build on schedules, so they are
    imported here, once everything is loaded."""
    from history.cleanup import cleanup_if_due
    from pauses.services import close_expired
    from reruns.services import promote_waiting

    found: list[Chore] = [
        ("reruns", 1.0, promote_waiting),
        ("pauses", 10.0, lambda: close_expired(now=clock())),
        ("alerts", config.alert_check_interval, alerts.tick),
    ]
    if config.history_retention_days:
        found.append(("history_cleanup", 300.0, lambda: cleanup_if_due(instance_id=config.instance_id)))
    found.extend(chore for chore in (build(config, clock=clock) for build in _registered) if chore is not None)
    return found
