"""Who is writing: set by the admin (middleware, bulk actions), the API sync
and commands; anything else is the Python API."""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from audit.models import ActorKind


@dataclass(frozen=True)
class Actor:
    kind: str
    name: str = ""


_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=Actor(ActorKind.PYTHON))


def current() -> Actor:
    return _current.get()


@contextlib.contextmanager
def acting_as(kind: str, name: str = ""):
    token = _current.set(Actor(kind, name))
    try:
        yield
    finally:
        _current.reset(token)


def on_behalf(kind: str, detail: str = ""):
    """acting_as ``kind``, naming the user who started it when there is one:
    an admin's "Sync from API now" is recorded as API sync requested by them."""
    outer = current()
    who = outer.name if outer.kind in (ActorKind.USER, ActorKind.BULK_ACTION) else ""
    return acting_as(kind, " ".join(part for part in (detail, f"(by {who})" if who else "") if part))
