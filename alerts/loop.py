"""The alert work of one runscheduler instance: evaluate the conditions, then deliver.
It runs on its own loop thread, so a slow SMTP server or webhook never holds up the main loop's heartbeats."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from alerts import checks
from alerts.channels import environment_channels, register_environment_channels
from alerts.delivery import dispatch_all
from history.statistics import get_queue_backlog

logger = logging.getLogger("alerts")

# How far back the first evaluation after a start looks for finished runs.
FIRST_LOOKBACK = timedelta(minutes=10)
# Added to the time since the last evaluation: runs recorded a little late.
MARGIN = timedelta(seconds=30)


class AlertLoop:
    """The alert pass of one instance; the runtime runs ``run_once`` on a loop
    thread of its own (a Chore with own_thread, see alerts.hooks)."""

    def __init__(self, *, instance_id: str):
        environment_channels()  # a bad ALERT_EMAILS / ALERT_WEBHOOK_URLS stops the start, naming the value
        self.instance_id = instance_id
        self._last: float | None = None
        self._registered = False

    def run_once(self) -> None:
        if not self._registered:
            register_environment_channels()
            self._registered = True
        now = time.monotonic()
        lookback = FIRST_LOOKBACK if self._last is None else timedelta(seconds=now - self._last) + MARGIN
        self._last = now
        evaluate(lookback=lookback, instance_id=self.instance_id)
        dispatch_all()


def evaluate(*, lookback: timedelta, instance_id: str = "") -> None:
    """Every condition, each on its own: one failing check never stops the others."""
    for name, check in (
        ("schedule streaks", lambda: checks.check_schedule_streaks(finished_within=lookback, instance_id=instance_id)),
        ("new cookies before consent", lambda: checks.check_new_cookies_before_consent(finished_within=lookback,
                                                                                       instance_id=instance_id)),
        ("scheduler liveness", lambda: checks.check_scheduler_liveness(instance_id=instance_id)),
        ("queue age", lambda: checks.check_queue_age(age_seconds=get_queue_backlog()["oldest_seconds"],
                                                     instance_id=instance_id)),
    ):
        try:
            check()
        except Exception:  # noqa: BLE001
            logger.exception("Alert check %s failed", name)
