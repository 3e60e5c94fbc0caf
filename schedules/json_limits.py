"""Bounds on a JSON value: depth, size, numbers and strings.

An API entry or an admin field that is deeper, larger or stranger than any
real schedule is refused with the path of the offending value, before any
code recurses through it, converts its numbers or stores it (PostgreSQL's
jsonb takes neither NaN nor a NUL character).
"""

from __future__ import annotations

import math
from typing import Any

from scanner_project.redaction import shown

MAX_DEPTH = 16
MAX_ITEMS = 10_000  # keys and list items, all levels together
MAX_STRING = 100_000
MAX_INTEGER = 2**53  # beyond it JSON readers disagree on the value


def json_problem(value: Any, *, name: str) -> str | None:
    """Why ``value`` (named ``name``) is not a bounded JSON value, or None.

    Iterative, so a value nested beyond the recursion limit is judged too.
    """
    pending: list[tuple[str, Any, int]] = [(name, value, 0)]
    items = 0
    while pending:
        path, item, depth = pending.pop()
        if depth > MAX_DEPTH:
            return f"{path}: is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            items += len(item)
            if items > MAX_ITEMS:
                return f"{name}: has more than {MAX_ITEMS} keys and items in all"
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"{path}: key {shown(key)} is not a string"
                problem = _string_problem(f"{path} key", key)
                if problem:
                    return problem
                pending.append((f"{path}.{shown(key, 40)[1:-1]}", child, depth + 1))
        elif isinstance(item, list):
            items += len(item)
            if items > MAX_ITEMS:
                return f"{name}: has more than {MAX_ITEMS} keys and items in all"
            pending.extend((f"{path}[{index}]", child, depth + 1) for index, child in enumerate(item))
        else:
            problem = _scalar_problem(path, item)
            if problem:
                return problem
    return None


def _scalar_problem(path: str, item: Any) -> str | None:
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        return None if -MAX_INTEGER <= item <= MAX_INTEGER else f"{path}: {shown(item, 40)} is out of range (±2**53)"
    if isinstance(item, float):
        return None if math.isfinite(item) else f"{path}: {item!r} is not a finite number"
    if isinstance(item, str):
        return _string_problem(path, item)
    return f"{path}: {type(item).__name__} is not a JSON value"


def _string_problem(path: str, text: str) -> str | None:
    if len(text) > MAX_STRING:
        return f"{path}: is longer than {MAX_STRING} characters ({len(text)})"
    if "\x00" in text:
        return f"{path}: {shown(text)} contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{path}: {shown(text)} is not valid Unicode (a lone surrogate)"
    return None
