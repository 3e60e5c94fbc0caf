"""Outbound HTTP, bounded: one place for sessions, retries, deadlines and size caps.

Used by the API importer (schedules.api_client) and the scan runners.
"""

from __future__ import annotations

import threading
import time

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (500, 502, 503, 504)
_CHUNK_BYTES = 64 * 1024


class ResponseTooLarge(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


class BearerAuth(requests.auth.AuthBase):
    """An auth object, not a session header: requests would otherwise replace
    the header with Basic auth taken from user info in the URL."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def build_session(*, token: str, retries: int, backoff: float, methods: frozenset = frozenset({"GET"})) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        # A Retry-After of an hour would stall the caller past any deadline.
        respect_retry_after_header=False,
        raise_on_status=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if token:
        session.auth = BearerAuth(token)
    return session


def read_body(response: requests.Response, *, max_bytes: int, seconds_left: float) -> bytes:
    """The body, cut off past ``max_bytes`` or after ``seconds_left``.

    Read timeouts alone let a server that drips a byte a second run forever,
    and iter_content blocks until a whole chunk has arrived, so a timer shuts
    the socket down to interrupt that blocking read.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"announced {int(declared)} bytes; the limit is {max_bytes} bytes")
    timed_out = threading.Event()

    def cut_off() -> None:
        timed_out.set()
        try:
            response.raw.shutdown()
        except (ValueError, RuntimeError, OSError):
            pass  # already finished or released

    watchdog = threading.Timer(max(seconds_left, 0), cut_off)
    watchdog.daemon = True
    watchdog.start()
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"sent more than {max_bytes} bytes (the limit)")
            if timed_out.is_set():
                break
            chunks.append(chunk)
    except requests.exceptions.RequestException:
        if not timed_out.is_set():
            raise
    finally:
        watchdog.cancel()
    if timed_out.is_set():
        raise DeadlineExceeded(f"did not finish its answer within {seconds_left:.3g} s")
    return b"".join(chunks)


def seconds_until(deadline: float) -> float:
    return deadline - time.monotonic()
