"""Reading the upstream schedule API: one GET, bounded in time and size.

Every way the read can fail becomes a ``SyncError`` whose message says what
went wrong and names the URL without credentials. The token travels only in
the Authorization header; it is never logged and never part of a message.
Redirects are not followed: a 3xx answer is an ``ApiRedirected`` error naming
its status and redacted Location. No byte of an answer's body is ever part of
a message (a login page or an error page may echo anything).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.views.decorators.debug import sensitive_variables
from urllib3.exceptions import ReadTimeoutError

from scanner_project.outbound.http import BoundedSession, DeadlineExceeded, ResponseTooLarge, build_session, read_body
from scanner_project.redaction import redact, shorten
from scanner_project.redaction import shown as shown_value

logger = logging.getLogger(__name__)


class SyncError(Exception):
    """The API could not be read, or its answer is not the expected shape."""


class ApiNotConfigured(SyncError):
    pass


class ApiUnreachable(SyncError):
    """Connection refused, DNS failure, or a timeout before or while reading."""


class ApiHttpError(SyncError):
    """An HTTP error status (5xx only after the retries ran out)."""


class ApiRedirected(ApiHttpError):
    """A 3xx answer; the API's address is API_URL only, so it is never followed."""


class ApiTooLarge(SyncError):
    pass


class ApiDeadlineExceeded(SyncError):
    pass


class ApiBadAnswer(SyncError):
    """Not JSON, or JSON that is not ``{"data": [...]}``."""


def redact_url(url: str) -> str:
    """The URL as it may appear in logs and messages: no user info, no query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    # Query strings often carry api keys; keep only the parameter names.
    query = "&".join(f"{item.split('=', 1)[0]}=***" for item in parts.query.split("&") if item)
    return redact(urlunsplit((parts.scheme, host, parts.path, query, "")))


@sensitive_variables("token")
def fetch_entries(
    *,
    url: str,
    token: str = "",
    timeout: float,
    deadline: float,
    max_bytes: int,
    retries: int = 3,
    backoff: float = 0.5,
) -> list[Any]:
    """The ``data`` list of the API's answer. Raises a ``SyncError`` subclass."""
    if not url:
        raise ApiNotConfigured("API_URL is not set (set it, or pass --url)")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ApiNotConfigured(f"{shown!r} is not an http:// or https:// URL (check API_URL or --url)")
    with build_session(token=token, retries=retries, backoff=backoff, deadline=deadline) as session:
        session.headers["Accept"] = "application/json"
        body, content_type = _read_body(session=session, url=url, shown=shown, timeout=timeout, max_bytes=max_bytes)
    return _parse(body=body, shown=shown, content_type=content_type)


@sensitive_variables("session")
def _read_body(*, session: BoundedSession, url: str, shown: str, timeout: float, max_bytes: int) -> tuple[bytes, str]:
    within = f"within the API_SYNC_DEADLINE of {session.deadline.seconds:g} s"
    try:
        response = session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=False)
    except DeadlineExceeded:
        raise ApiDeadlineExceeded(f"{shown} did not answer {within}") from None
    except requests.exceptions.RetryError:
        raise ApiHttpError(f"{shown} kept answering with a server error (5xx) after {_attempts(session)} attempts") from None
    except requests.exceptions.Timeout:
        raise ApiUnreachable(f"{shown} did not answer within the REQUEST_TIMEOUT of {timeout:g} s (after retries)") from None
    except requests.exceptions.ConnectionError as exc:
        # A read timeout that exhausted the retries arrives as a ConnectionError.
        if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
            raise ApiUnreachable(f"{shown} did not answer within the REQUEST_TIMEOUT of {timeout:g} s (after retries)") from None
        raise ApiUnreachable(f"could not connect to {shown} (connection refused or failed, after retries)") from None
    except requests.exceptions.RequestException as exc:
        raise ApiUnreachable(f"request to {shown} failed: {type(exc).__name__}") from None

    with response:
        if 300 <= response.status_code < 400:
            location = shorten(redact_url(response.headers.get("Location") or ""), 120) or "no Location"
            raise ApiRedirected(f"{shown} answered {_status(response)}, a redirect to {location}; redirects are "
                                "not followed: set API_URL to the address that answers")
        if response.status_code >= 400:
            raise ApiHttpError(f"{shown} answered {_status(response)}")
        try:
            body = read_body(response, max_bytes=max_bytes, deadline=session.deadline)
            return body, response.headers.get("Content-Type") or "no Content-Type"
        except ResponseTooLarge as exc:
            raise ApiTooLarge(f"{shown} {exc}") from None
        except DeadlineExceeded:
            raise ApiDeadlineExceeded(f"{shown} did not finish its answer {within}") from None
        except requests.exceptions.RequestException:
            raise ApiUnreachable(f"reading the answer of {shown} failed or timed out after {timeout:g} s") from None


def _status(response: requests.Response) -> str:
    # The reason phrase is the server's own text: short, and redacted.
    return f"HTTP {response.status_code} {redact(shorten(response.reason or '', 60))}".rstrip()


def _attempts(session: requests.Session) -> int:
    retry = session.get_adapter("http://").max_retries
    return (retry.status or 0) + 1


def _parse(*, body: bytes, shown: str, content_type: str = "") -> list[Any]:
    try:
        answer = json.loads(body)
    except RecursionError:
        raise ApiBadAnswer(f"{shown} answered JSON nested too deeply to read (over {sys.getrecursionlimit()} levels)") from None
    except (ValueError, UnicodeDecodeError):
        # What it is, never what it says: the body may echo anything.
        kind = shown_value(content_type, 60)
        raise ApiBadAnswer(f"{shown} did not answer JSON (Content-Type {kind}, {len(body)} bytes)") from None
    if not isinstance(answer, dict) or "data" not in answer:
        raise ApiBadAnswer(f'{shown} answered {type(answer).__name__} JSON; expected an object {{"data": [...]}}')
    if not isinstance(answer["data"], list):
        raise ApiBadAnswer(f'{shown} answered "data" as {type(answer["data"]).__name__}; expected a list')
    return answer["data"]
