"""Outages: one log line when PostgreSQL or Redis goes away and one when it is back.
And the repair of the connection pool after a database error.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection, connections

logger = logging.getLogger("schedules.runtime")


class OutageLog:
    """Logs a warning when a dependency goes away and once when it is back:
    one line per outage, not one per run. While it is down, ``should_try``
    lets one caller probe it every PROBE_EVERY seconds; the others go straight
    to their fallback instead of each waiting out a socket timeout."""

    PROBE_EVERY = 2.0

    def __init__(self, name: str):
        self.name = name
        self._down = False
        self._last_probe = 0.0
        self._recovered_at = float("-inf")
        self._mutex = threading.Lock()

    def should_try(self) -> bool:
        if not self._down:
            return True
        with self._mutex:
            now = time.monotonic()
            if now - self._last_probe >= self.PROBE_EVERY:
                self._last_probe = now
                return True
        return False

    def down(self, error: BaseException, consequence: str) -> None:
        with self._mutex:
            self._last_probe = time.monotonic()
            first, self._down = not self._down, True
        if first:
            logger.warning("%s unavailable (%s); %s", self.name, error, consequence)

    def up(self) -> None:
        if self._down:
            with self._mutex:
                was, self._down = self._down, False
            if was:
                self._recovered_at = time.monotonic()
                logger.warning("%s is back", self.name)

    def recovered_within(self, seconds: float) -> bool:
        return time.monotonic() - self._recovered_at < seconds

    @property
    def is_down(self) -> bool:
        return self._down


def repair_connections() -> None:
    """After a database error: give back this thread's connection and have the
    pool drop every broken idle one (a restarted PostgreSQL breaks them all)."""
    close_old_connections()
    pool = getattr(connection, "pool", None) if connection.vendor == "postgresql" else None
    if pool is not None:
        try:
            pool.check()
        except Exception:  # noqa: BLE001 - the next claim retry reports the outage
            pass


def skip_checkout_health_checks() -> None:
    """A scheduler takes a pooled connection for every slot; checking each one
    on checkout was a fifth of a slot's database time. The runtime repairs the
    pool itself after a database error instead (repair_connections), so in
    this process the check is switched off before the pool exists."""
    wrapper = connections["default"]
    if wrapper.vendor == "postgresql" and wrapper.alias not in getattr(wrapper, "_connection_pools", {}):
        wrapper.settings_dict["CONN_HEALTH_CHECKS"] = False
