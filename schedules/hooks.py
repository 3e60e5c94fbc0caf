"""Hooks: every extension point where the apps built on schedules plug in.
Each is a small registry filled from an AppConfig.ready(); schedules reads it and never imports those apps.

- chores of a runscheduler process (pauses, reruns, alerts, audit): ``register_chore``;
- the pause check on the slot path (pauses): ``register_pause_source`` / ``pause_source``;
- the result of each periodic API import (alerts): ``register_sync_listener`` / ``notify_sync_result``;
- actions and page sections of the schedule admin (pauses, reruns): ``register_schedule_admin``.

Only the standard library is imported here: the runtime, the importer and the
admin import this module, so it must import none of them back.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """What the apps registered for one extension point, in registration order.
    Registering an equal item again changes nothing: AppConfig.ready() may run
    twice. Readers get a tuple swapped in whole, so the slot path reads it
    without a lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: tuple[T, ...] = ()
        self._mutex = threading.Lock()

    def add(self, item: T) -> None:
        with self._mutex:
            if item not in self._items:
                self._items = (*self._items, item)

    def __call__(self) -> tuple[T, ...]:
        return self._items


# --- chores of a runscheduler process -------------------------------------------
class Chore(NamedTuple):
    """A periodic task of the main loop, off the slot path, every ``interval`` seconds.
    ``own_thread``: run it on its own thread, never two passes at once, so a slow
    one (an SMTP server) never holds up the main loop's heartbeats."""

    name: str
    interval: float
    task: Callable[[], object]
    own_thread: bool = False


class ChoreBuilder(Protocol):
    """``config`` is the process's schedules.runtime.config.RuntimeConfig (typed
    Any: the runtime imports this module); None when the chore is off."""

    def __call__(self, config: Any, *, clock: Callable[[], datetime]) -> Chore | None: ...


CHORES: Registry[ChoreBuilder] = Registry("chores")


def register_chore(builder: ChoreBuilder) -> None:
    CHORES.add(builder)


def build_chores(config: Any, *, clock: Callable[[], datetime]) -> list[Chore]:
    """The registered chores of this process that are on, in registration order."""
    return [chore for chore in (build(config, clock=clock) for build in CHORES()) if chore is not None]


# --- the pause check on the slot path ----------------------------------------------
class PauseSnapshot(Protocol):
    """The schedules any pause could hold a slot of, as the database saw them at ``taken_at``."""

    taken_at: datetime

    def may_hold(self, *, schedule_id: uuid.UUID, at: datetime) -> bool:
        """False only when no pause can hold this slot: then ``reason`` has nothing to say."""
        ...


class PauseSource(Protocol):
    def snapshot(self, *, now: datetime) -> PauseSnapshot:
        """``now``: the database's time as the caller knows it, taken before the query."""
        ...

    def reason(self, *, schedule_id: uuid.UUID, at: datetime) -> str | None:
        """Why the schedule's slot at ``at`` is held by a pause; None (or "") when it is not."""
        ...


class _NoSnapshot(NamedTuple):
    taken_at: datetime

    def may_hold(self, *, schedule_id: uuid.UUID, at: datetime) -> bool:
        return False


class _NoPauses:
    """Without a pause app nothing is ever paused, and no slot costs a query."""

    def snapshot(self, *, now: datetime) -> PauseSnapshot:
        return _NoSnapshot(taken_at=now)

    def reason(self, *, schedule_id: uuid.UUID, at: datetime) -> str | None:
        return None


NO_PAUSES: PauseSource = _NoPauses()
PAUSE_SOURCES: Registry[PauseSource] = Registry("pause sources")


def register_pause_source(source: PauseSource) -> None:
    """One source: two could disagree on a slot, and the runtime asks one."""
    registered = PAUSE_SOURCES()
    if registered and registered[0] != source:
        raise RuntimeError(f"a pause source is registered already ({registered[0]!r}); not adding {source!r}")
    PAUSE_SOURCES.add(source)


def pause_source() -> PauseSource:
    registered = PAUSE_SOURCES()
    return registered[0] if registered else NO_PAUSES


# --- the result of a periodic API import ---------------------------------------------
class SyncListener(Protocol):
    def __call__(self, result: dict | None, *, instance_id: str) -> object:
        """``result``: run_periodic_sync's answer (``{"error": ...}`` when it
        failed), None when another instance had the interval. Not called while sync is off."""
        ...


SYNC_LISTENERS: Registry[SyncListener] = Registry("sync listeners")


def register_sync_listener(listener: SyncListener) -> None:
    SYNC_LISTENERS.add(listener)


def notify_sync_result(result: dict | None, *, instance_id: str) -> None:
    """Every listener, each on its own: one that fails is logged and never ends the import."""
    for listener in SYNC_LISTENERS():
        try:
            listener(result, instance_id=instance_id)
        except Exception:  # noqa: BLE001 - the periodic sync never raises
            logger.exception("API sync listener %r failed", listener)


# --- the schedule admin --------------------------------------------------------------
class AdminSection(NamedTuple):
    """A read-only section on a saved schedule's admin page. ``fields``: display
    functions of the schedule (``admin.display``, one argument: the schedule).
    It shows another model's data, so only to users with ``permission``
    ("app_label.view_model"). ``first``: right after the first fieldset, else at the end."""

    title: str
    fields: tuple[Callable[[Any], object], ...]
    permission: str
    first: bool = False


class ScheduleAdminExtension(NamedTuple):
    """What an app adds to the schedule admin: list actions (``admin.action``
    functions, after the admin's own) and page sections. Read at each request,
    so the order in which the apps' admin modules load does not matter."""

    actions: tuple[Callable[..., object], ...] = ()
    sections: tuple[AdminSection, ...] = ()


SCHEDULE_ADMIN: Registry[ScheduleAdminExtension] = Registry("schedule admin")


def register_schedule_admin(extension: ScheduleAdminExtension) -> None:
    SCHEDULE_ADMIN.add(extension)


def schedule_admin_extensions() -> tuple[ScheduleAdminExtension, ...]:
    return SCHEDULE_ADMIN()
