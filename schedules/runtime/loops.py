"""Background loops of one instance that cannot die silently.

A pass that raises is logged and the loop goes on with its next pass. A loop
that ends by an exception anyway (a bug outside its passes) is logged as
dead, shows as 0 in the ``scanner_loop_alive`` gauge, and stops the process
with a non-zero exit status, so that its supervisor restarts it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from django.db import DatabaseError, close_old_connections

from scanner_project import metrics

logger = logging.getLogger("schedules.runtime")


class Loops:
    def __init__(self, *, on_death: Callable[[str], None], on_db_error: Callable[[DatabaseError], None]):
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
