"""Loops: every background loop of an instance, on one primitive that cannot die silently.
Thread loops (``start``, ``every``) and the main loop's periodic passes (``Ticker``).

A pass that raises is logged and the loop goes on with its next pass. A loop
that ends by an exception anyway (a bug outside its passes) is logged as
dead, shows as 0 in the ``scanner_loop_alive`` gauge, and stops the process
with a non-zero exit status, so that its supervisor restarts it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from django.db import DatabaseError, close_old_connections

from scanner_project import metrics

logger = logging.getLogger("schedules.runtime")


class Loops:
    def __init__(self, *, stop: threading.Event, on_death: Callable[[str], None],
                 on_db_error: Callable[[DatabaseError], None]):
        self.stop = stop
        self.on_death = on_death
        self.on_db_error = on_db_error
        self.threads: dict[str, threading.Thread] = {}
        self.dead: list[str] = []

    def start(self, name: str, body: Callable[[], None]) -> threading.Thread:
        """Run ``body`` (a loop that returns when the instance stops) in a
        daemon thread watched for death."""
        thread = threading.Thread(target=self._watched, args=(name, body), name=name, daemon=True)
        self.threads[name] = thread
        metrics.LOOP_ALIVE.labels(loop=name).set(1)
        thread.start()
        return thread

    def every(self, name: str, interval: float, task: Callable[[], object], *, until: threading.Event | None = None,
              at_once: bool = True) -> threading.Thread:
        """Run ``task`` on its own thread every ``interval`` seconds (never two
        passes at once: a slow pass delays the next) until ``until`` (default:
        the instance's stop) is set."""
        until = until or self.stop

        def body() -> None:
            if not at_once and until.wait(interval):
                return
            while True:
                self.one_pass(name, task)
                if until.wait(interval):
                    return

        return self.start(name, body)

    def _watched(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException:  # noqa: BLE001 - whatever ended it, say so and stop the process
            self.dead.append(name)
            metrics.LOOP_ALIVE.labels(loop=name).set(0)
            logger.critical("Background loop %s died; stopping this instance so that it is restarted",
                            name, exc_info=True)
            self.on_death(name)
            return
        finally:
            close_old_connections()
        metrics.LOOP_ALIVE.labels(loop=name).set(0)

    def one_pass(self, name: str, task: Callable[[], object]) -> bool:
        """Run one pass of a loop; an exception is logged, never raised."""
        try:
            task()
            return True
        except DatabaseError as exc:
            self.on_db_error(exc)
        except Exception:  # noqa: BLE001 - one failing pass must not end the loop
            logger.exception("Background loop %s: a pass failed; the loop goes on", name)
        finally:
            close_old_connections()
        return False


class Ticker:
    """The main loop's periodic passes: each task runs when its interval has
    passed since its last run, on the thread that calls ``tick`` (the main
    loop, between heartbeats), through ``Loops.one_pass``."""

    def __init__(self, *, loops: Loops, on_pass: Callable[[], None] = lambda: None):
        self.loops = loops
        self.on_pass = on_pass  # after a pass that succeeded (the database answered)
        self._tasks: list[tuple[str, float, Callable[[], object]]] = []
        self._last_run: dict[str, float] = {}

    def add(self, name: str, interval: float, task: Callable[[], object], *, ran_now: bool = False) -> None:
        """``ran_now``: count the task as just run (its first pass waits a whole interval)."""
        self._tasks.append((name, interval, task))
        if ran_now:
            self._last_run[name] = time.monotonic()

    def tick(self) -> None:
        for name, interval, task in self._tasks:
            now = time.monotonic()
            if now - self._last_run.get(name, float("-inf")) < interval:
                continue
            self._last_run[name] = now
            if self.loops.one_pass(name, task):
                self.on_pass()
