"""How alerts plug into schedules, registered in AlertsConfig.ready(): the alert
chore of every runscheduler process, and the count of the periodic API import's failures in a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from alerts.checks import note_sync_result
from alerts.loop import AlertLoop
from schedules import hooks


def alert_chore(config: Any, *, clock: Callable[[], datetime]) -> hooks.Chore:
    """Evaluate and deliver every ALERT_CHECK_INTERVAL. Built with the process:
    a bad ALERT_EMAILS / ALERT_WEBHOOK_URLS stops the start, naming the value."""
    loop = AlertLoop(instance_id=config.instance_id)
    # own_thread: a slow SMTP server or webhook must not hold up the main loop.
    return hooks.Chore("alerts", config.alert_check_interval, loop.run_once, own_thread=True)


def register() -> None:
    hooks.register_chore(alert_chore)
    hooks.register_sync_listener(note_sync_result)
