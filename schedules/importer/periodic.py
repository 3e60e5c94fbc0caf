"""The periodic API import on its own thread.

An import waits on the upstream API for up to API_SYNC_DEADLINE (plus the
database writes). Run on the scheduler's main loop, that wait froze its
heartbeats, manual runs and change polling, so other instances and /healthz
took the instance for dead. Here it waits on its own thread instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

logger = logging.getLogger(__name__)


def _periodic_sync(*, instance_id: str) -> Any:
    from schedules.importer.apply import run_periodic_sync  # the import pulls in models: not at module load

    return run_periodic_sync(instance_id=instance_id)  # its listeners (alerts) hear the result


class PeriodicSyncThread:
    """Calls ``sync(instance_id=...)`` at once and then every ``interval`` seconds
    until ``stop`` is set. A pass that raises is logged; the next pass runs."""

    def __init__(
        self,
        *,
        instance_id: str,
        interval: float,
        stop: threading.Event,
        sync: Callable[..., Any] = _periodic_sync,
    ) -> None:
        self.instance_id = instance_id
        self.interval = interval
        self.stop = stop
        self.sync = sync
        self.passes = 0
        self.thread = threading.Thread(target=self._loop, name="api-sync", daemon=True)

    def start(self) -> "PeriodicSyncThread":
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.run_once()
            self.stop.wait(self.interval)
        close_old_connections()

    def run_once(self) -> None:
        close_old_connections()
        try:
            self.sync(instance_id=self.instance_id)
        except Exception:  # noqa: BLE001 - one failed pass must not end the thread
            logger.exception("Periodic API sync failed; the next one runs in %g s", self.interval)
        finally:
            self.passes += 1
            close_old_connections()
