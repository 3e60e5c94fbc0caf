"""Text that may reach a message, a log line, a stored error or a page, made safe to show.

``redact`` is the one redaction path. In any text it replaces
- URL user info (``scheme://user:password@host`` and a loose ``user:pw@host``),
- the values of query parameters whose names look secret (``?api_key=…``,
  ``&X-Amz-Signature=…``, ``;token=…``: any name containing token, key, secret,
  pass, pwd, sig, auth, credential, session, …),
- everything after the host of known webhook services, whose path is the secret
  (``https://hooks.slack.com/services/…``, Discord, Microsoft Teams, Zapier,
  Telegram's ``/bot<token>``),
- a ``Bearer <token>`` credential,

each with ``***``. Redacting twice changes nothing more. ``shown`` and
``shorten`` also cut long values short, so a rejection does not echo megabytes.
``RedactingFilter`` applies ``redact`` to every log line (settings.LOGGING).
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
SHOWN_CHARS = 200

# scheme://userinfo@ and the scheme-less //userinfo@; userinfo stops at the
# first character that cannot be part of it.
_USERINFO = re.compile(r"(?P<lead>(?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#@\s'\"]*@")
# user:password@ anywhere else, as in the mistyped postgresql//user:pw@host.
_LOOSE_USERINFO = re.compile(r"(?<![^\s'\"=(/:])[^/?#@\s'\":]+:[^/?#@\s'\"]*@")

# Names of query parameters whose values are secrets; matched anywhere in the
# name, case-insensitively (x-api-key, client_secret, X-Amz-Signature, sig).
SECRET_NAME = re.compile(
    r"token|key|secret|pass|pwd|sig|auth|credential|session|cookie|jwt|bearer|private",
    re.IGNORECASE,
)
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;](?:amp;)?)(?P<name>[^=&;#?\s'\"<>]+)=(?P<value>[^&;#\s'\"<>]*)")

# Webhook services whose URL path is the credential: only the host is kept.
WEBHOOK_HOSTS = (
    r"hooks\.slack\.com",
    r"(?:ptb\.|canary\.)?discord(?:app)?\.com",
    r"outlook\.office(?:365)?\.com",
    r"[\w-]+\.webhook\.office\.com",
    r"hooks\.zapier\.com",
    r"api\.telegram\.org",
)
_WEBHOOK_URL = re.compile(
    r"(?P<keep>(?<![\w.-])(?:%s)(?::\d+)?)(?P<path>/[^\s'\"<>]*)" % "|".join(WEBHOOK_HOSTS), re.IGNORECASE
)
# The same services' secret paths wherever they appear: behind a relay's
# host, or without a host at all (urllib3's "Max retries exceeded with url: /…").
_WEBHOOK_PATH = re.compile(
    r"(?P<keep>/services/|/api/webhooks/|/webhookb2/|/IncomingWebhook/|/hooks/catch/|/bot)"
    r"(?:(?<=/services/)T[A-Z0-9]+/B[A-Z0-9]+/[\w-]+|(?<=/api/webhooks/)\d+/[\w-]+"
    r"|(?<=/webhookb2/)[\w@./-]+|(?<=/IncomingWebhook/)[\w./-]+|(?<=/hooks/catch/)\d+/[\w-]+|(?<=/bot)\d+:[\w-]+)"
)
_BEARER = re.compile(r"(?P<lead>\bBearer\s+)[^\s'\",;]+", re.IGNORECASE)
# Without one of these characters no rule above can match: most log lines.
_MAY_HOLD_SECRET = re.compile(r"[@=/]|bearer", re.IGNORECASE)


def _query_value(match: re.Match) -> str:
    if not SECRET_NAME.search(match.group("name")) or match.group("value") == MASK:
        return match.group(0)
    return f"{match.group('lead')}{match.group('name')}={MASK}"


def redact(text: str) -> str:
    """``text`` with every secret this module recognises replaced by ``***``."""
    if not text or not _MAY_HOLD_SECRET.search(text):
        return text
    text = _USERINFO.sub(rf"\g<lead>{MASK}@", text)
    text = _LOOSE_USERINFO.sub(f"{MASK}@", text)
    text = _WEBHOOK_URL.sub(rf"\g<keep>/{MASK}", text)
    text = _WEBHOOK_PATH.sub(rf"\g<keep>{MASK}", text)
    text = _QUERY_PARAM.sub(_query_value, text)
    return _BEARER.sub(rf"\g<lead>{MASK}", text)


def redact_data(value: Any) -> Any:
    """``value`` with ``redact`` applied to every string in it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(item) for item in value)
    return value


def userinfo_in(text: str) -> list[str]:
    """The user-info parts (``user:password@``) of the URLs in ``text``."""
    found = [m.group(0)[len(m.group("lead")):] for m in _USERINFO.finditer(text)]
    return found + [m.group(0) for m in _LOOSE_USERINFO.finditer(text)]


def redact_userinfo(text: str) -> str:
    """Kept for its callers: the whole redaction, user info included."""
    return redact(text)


def shorten(text: str, limit: int = SHOWN_CHARS, *, total: int | None = None) -> str:
    total = len(text) if total is None else total
    if len(text) <= limit and total <= limit:
        return text
    return f"{text[:limit]}… ({total} characters in all)"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message: secrets redacted, at most ``limit`` characters."""
    total = len(value) if isinstance(value, str) else None
    return shorten(redact(_bounded_repr(value, limit)), limit, total=total)


def _bounded_repr(value: object, limit: int) -> str:
    # repr of a 9 MB string or a 3,000-deep list is itself the problem.
    if isinstance(value, str) and len(value) > limit * 2:
        return repr(value[: limit * 2])
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deeply to show>"
    return text


class RedactingFilter(logging.Filter):
    """Redacts each record's whole message (format arguments included), its
    exception text and stack; installed on the root handlers in settings.LOGGING,
    so it covers every library's log lines too (urllib3's retry warnings print
    the URL they retry, query string and all)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
