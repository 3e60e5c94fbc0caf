"""Wait for a condition with a bounded timeout: the only way tests wait."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float, message: str | Callable[[], str] = "",
               interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy, and return that;
    fail with ``message`` (a string or a function giving one) at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"not true within {timeout} s: {text}")
        time.sleep(interval)
