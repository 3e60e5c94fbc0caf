"""Chores that one instance of many runs once a day (history cleanup, audit pruning)."""

from __future__ import annotations

from typing import Callable, TypeVar

from django.core.cache import cache

DAY_SECONDS = 86400
T = TypeVar("T")


def once_a_day(*, key: str, instance_id: str, task: Callable[[], T]) -> T | None:
    """Run ``task`` unless an instance ran it under ``key`` in the last day
    (the first to cache.add() the key wins); None when it was not this one's turn.
    A failing task gives the turn back, so another instance (or the next tick)
    tries again instead of waiting a day."""
    if not cache.add(key, instance_id, timeout=DAY_SECONDS):
        return None
    try:
        return task()
    except Exception:
        cache.delete(key)
        raise
