"""Reading the upstream schedule API: one GET, bounded in time and size.

Every way the read can fail becomes a ``SyncError`` whose message says what
went wrong and names the URL without credentials. The token travels only in
the Authorization header; it is never logged and never part of a message.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

RETRY_STATUSES = (500, 502, 503, 504)
_CHUNK_BYTES = 64 * 1024


class SyncError(Exception):
    """The API could not be read, or its answer is not the expected shape."""


class ApiNotConfigured(SyncError):
    pass


class ApiUnreachable(SyncError):
    """Connection refused, DNS failure, or a timeout before or while reading."""


class ApiHttpError(SyncError):
    """An HTTP error status (5xx only after the retries ran out)."""


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
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def build_session(*, token: str, retries: int, backoff: float) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        # A Retry-After of an hour would stall the scheduler loop past any deadline.
        respect_retry_after_header=False,
        raise_on_status=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/json"
    if token:
        # An auth object, not a session header: requests would otherwise replace
        # the header with Basic auth taken from user info in the URL.
        session.auth = _Bearer(token)
    return session


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


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
    with build_session(token=token, retries=retries, backoff=backoff) as session:
        body = _read_body(session=session, url=url, shown=shown, timeout=timeout, deadline=deadline,
                          max_bytes=max_bytes)
    return _parse(body=body, shown=shown)


def _read_body(
    *, session: requests.Session, url: str, shown: str, timeout: float, deadline: float, max_bytes: int
) -> bytes:
    started = time.monotonic()
    try:
        response = session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=True)
    except requests.exceptions.RetryError:
        raise ApiHttpError(f"{shown} kept answering with a server error (5xx) after {_attempts(session)} attempts") from None
    except requests.exceptions.Timeout:
        raise ApiUnreachable(f"{shown} did not answer within {timeout:g} s (after retries)") from None
    except requests.exceptions.ConnectionError as exc:
        # A read timeout that exhausted the retries arrives as a ConnectionError.
        if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
            raise ApiUnreachable(f"{shown} did not answer within {timeout:g} s (after retries)") from None
        raise ApiUnreachable(f"could not connect to {shown} (connection refused or failed, after retries)") from None
    except requests.exceptions.RequestException as exc:
        raise ApiUnreachable(f"request to {shown} failed: {type(exc).__name__}") from None

    with response:
        if response.status_code >= 400:
            raise ApiHttpError(f"{shown} answered HTTP {response.status_code} {response.reason or ''}".rstrip())
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ApiTooLarge(f"{shown} announced {int(declared)} bytes; the limit is {max_bytes} bytes")
        remaining = deadline - (time.monotonic() - started)
        # iter_content blocks until a whole chunk has arrived, so a server that
        # drips one byte at a time is never seen between chunks. A timer that
        # shuts the socket down interrupts that blocking read.
        timed_out = threading.Event()

        def cut_off() -> None:
            timed_out.set()
            try:
                response.raw.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # already finished or released

        watchdog = threading.Timer(max(remaining, 0), cut_off)
        watchdog.daemon = True
        watchdog.start()
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise ApiTooLarge(f"{shown} sent more than {max_bytes} bytes (the limit)")
                if timed_out.is_set():
                    break
                chunks.append(chunk)
        except requests.exceptions.RequestException:
            if not timed_out.is_set():
                raise ApiUnreachable(f"reading the answer of {shown} failed or timed out after {timeout:g} s") from None
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            raise ApiDeadlineExceeded(f"{shown} did not finish its answer within the {deadline:g} s deadline")
    return b"".join(chunks)


def _attempts(session: requests.Session) -> int:
    retry = session.get_adapter("http://").max_retries
    return (retry.status or 0) + 1


def _parse(*, body: bytes, shown: str) -> list[Any]:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        start = body[:40].decode("utf-8", "replace").strip()
        raise ApiBadAnswer(f"{shown} did not answer JSON (it starts with {start!r})") from None
    if not isinstance(answer, dict) or "data" not in answer:
        raise ApiBadAnswer(f'{shown} answered {type(answer).__name__} JSON; expected an object {{"data": [...]}}')
    if not isinstance(answer["data"], list):
        raise ApiBadAnswer(f'{shown} answered "data" as {type(answer["data"]).__name__}; expected a list')
    return answer["data"]
