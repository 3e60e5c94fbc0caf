"""The original design's entry points, for code written against it:

    from schedules.scheduler import EnhancedScheduler, run_enhanced_scheduler
    EnhancedScheduler(max_workers=5, enable_api_sync=True).run()
"""

from __future__ import annotations

import signal
import threading

from schedules.runtime import SchedulerService


class EnhancedScheduler:
    def __init__(
        self,
        *,
        max_workers: int | None = None,
        enable_api_sync: bool | None = None,
        api_sync_interval: float | None = None,
        schedule_check_interval: float | None = None,
        instance_id: str | None = None,
    ):
        self.service = SchedulerService(
            instance_id=instance_id,
            max_workers=max_workers,
            enable_api_sync=enable_api_sync,
            api_sync_interval=api_sync_interval,
            schedule_check_interval=schedule_check_interval,
        )
        self._loop: threading.Thread | None = None

    def start(self) -> None:
        """Load the schedules and run in background threads; returns at once."""
        if self.service.config.enable_api_sync:
            self.sync_schedules_from_api()
        self._loop = threading.Thread(target=self.service.run, name="scheduler-loop", daemon=True)
        self._loop.start()

    def run(self) -> None:
        """Blocking, until SIGTERM or SIGINT (or shutdown() from another thread)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.service.request_stop())
        if self.service.config.enable_api_sync:
            self.sync_schedules_from_api()
        self.service.run()

    def shutdown(self, wait: bool = True) -> None:
        self.service.request_stop()
        if wait and self._loop is not None:
            self._loop.join()

    def sync_schedules_from_api(self) -> dict:
        from schedules.importer.apply import sync_schedules_from_api

        return sync_schedules_from_api()

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_alive()


def run_enhanced_scheduler(**options) -> None:
    EnhancedScheduler(**options).run()
