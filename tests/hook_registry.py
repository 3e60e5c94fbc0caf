"""A hook registry without some of its registrations for a while, then exactly as before (for tests)."""

from contextlib import contextmanager


@contextmanager
def registry_without(registry, *items):
    """Shows what schedules does when an app has not registered."""
    before = registry._items
    registry._items = tuple(item for item in before if item not in items)
    try:
        yield
    finally:
        registry._items = before
