"""Text that may reach a message, a log line or a page, made safe to show.

URL user info (``scheme://user:password@host``) is replaced wherever it
appears, and long values are cut short so a rejection does not echo megabytes.
"""

from __future__ import annotations

import re

# scheme://userinfo@ and the scheme-less //userinfo@; userinfo stops at the
# first character that cannot be part of it.
_USERINFO = re.compile(r"(?P<lead>(?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#@\s'\"]*@")
# user:password@ anywhere else, as in the mistyped postgresql//user:pw@host.
_LOOSE_USERINFO = re.compile(r"(?<![^\s'\"=(/:])[^/?#@\s'\":]+:[^/?#@\s'\"]*@")

SHOWN_CHARS = 200


def userinfo_in(text: str) -> list[str]:
    """The user-info parts (``user:password@``) of the URLs in ``text``."""
    found = [m.group(0)[len(m.group("lead")):] for m in _USERINFO.finditer(text)]
    return found + [m.group(0) for m in _LOOSE_USERINFO.finditer(text)]


def redact_userinfo(text: str) -> str:
    text = _USERINFO.sub(r"\g<lead>***@", text)
    return _LOOSE_USERINFO.sub("***@", text)


def shorten(text: str, limit: int = SHOWN_CHARS, *, total: int | None = None) -> str:
    total = len(text) if total is None else total
    if len(text) <= limit and total <= limit:
        return text
    return f"{text[:limit]}… ({total} characters in all)"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message: user info redacted, at most ``limit`` characters."""
    total = len(value) if isinstance(value, str) else None
    return shorten(redact_userinfo(_bounded_repr(value, limit)), limit, total=total)


def _bounded_repr(value: object, limit: int) -> str:
    # repr of a 9 MB string or a 3,000-deep list is itself the problem.
    if isinstance(value, str) and len(value) > limit * 2:
        return repr(value[: limit * 2])
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to show>"
    return text
