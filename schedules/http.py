"""Outbound HTTP for scan runners: one place for timeouts, retries and caps."""

from __future__ import annotations

import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class ResponseTooLarge(Exception):
    pass


class DeadlineExceeded(requests.Timeout):
    pass


def make_session(*, token: str, retries: int, backoff: float = 0.5) -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,  # POSTs to the scan API are idempotent per execution id
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def read_capped(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    """The body, cut off at ``max_bytes`` or at the monotonic ``deadline``:
    read timeouts alone let a server that drips one byte a second run forever."""
    body = bytearray()
    for chunk in response.iter_content(chunk_size=65536):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ResponseTooLarge(f"response from {response.url} is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise DeadlineExceeded(f"response from {response.url} did not finish before the deadline")
    return bytes(body)
