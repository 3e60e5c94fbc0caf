"""Scan runners: what a run does once its slot is claimed and locked.

- ``http_runner``: POSTs the domain and its scan settings to SCAN_API_URL.
- ``probe_runner``: with no scan API, fetches the home page and custom pages
  and records the cookies they set, so the embedded default does real work.
- SCAN_RUNNER: a dotted path to any other callable taking a ScanRequest.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from scanner_project.redaction import redact_userinfo

from .addresses import AddressRefused, refuse_ambiguous_url
from .http import DeadlineExceeded, ResponseTooLarge, build_session, read_body


@dataclass(frozen=True)
class ScanRequest:
    schedule_id: uuid.UUID
    execution_id: uuid.UUID
    domain: str
    domain_config_id: str
    scheduled_for: datetime | None
    scan_settings: dict
    trigger: str = "scheduled"
    attempt: int = 1  # of 1 + maxRetries (run_with_retries)

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of one attempt of one execution: a
        repeat after a crash is recognisable, a retry after a failure is not."""
        return str(self.execution_id) if self.attempt == 1 else f"{self.execution_id}:{self.attempt}"


@dataclass
class ScanResult:
    scan_id: str = ""
    metadata: dict = field(default_factory=dict)


class ScanRefused(Exception):
    """A scan that must not be attempted (e.g. it resolves to a private address)."""


Runner = Callable[[ScanRequest], Any]


def noop_runner(request: ScanRequest) -> ScanResult:
    return ScanResult(scan_id="", metadata={"runner": "noop"})


@sensitive_variables("session")
def http_runner(request: ScanRequest) -> ScanResult:
    # A POST that may have started a scan is not retried here; the whole scan is
    # retried by run_with_retries, recorded as attempts of the execution.
    # Idempotency-Key: a run whose instance died is delivered again by another
    # (history.services.rescue_orphaned) with the same key; the scan API can
    # answer the repeat without scanning twice.
    payload = {
        "domain": request.domain,
        "domain_config_id": request.domain_config_id,
        "schedule_id": str(request.schedule_id),
        "execution_id": str(request.execution_id),
        "scheduled_for": request.scheduled_for.isoformat() if request.scheduled_for else None,
        "settings": request.scan_settings,
    }
    with build_session(token=settings.SCAN_API_TOKEN, retries=0, backoff=0, deadline=settings.SCAN_DEADLINE) as session:
        with session.post(settings.SCAN_API_URL, json=payload, timeout=_timeouts(), stream=True,
                          headers={"Idempotency-Key": request.idempotency_key}) as response:
            body = read_body(response, max_bytes=settings.HTTP_MAX_RESPONSE_BYTES, deadline=session.deadline)
            response.raise_for_status()
    answer = requests.models.complexjson.loads(body or b"{}")
    scan_id = answer.get("scan_id") or answer.get("id") or (answer.get("data") or {}).get("scan_id") or ""
    return ScanResult(scan_id=str(scan_id), metadata={"runner": "http", "status_code": response.status_code})


def probe_runner(request: ScanRequest) -> ScanResult:
    pages = ["/"] + [p for p in request.scan_settings.get("customPages") or [] if isinstance(p, str)]
    scheme = settings.PROBE_SCHEME
    cookies: dict[tuple, dict] = {}
    fetched = []
    session = build_session(
        token="", retries=1, backoff=0.5, deadline=settings.SCAN_DEADLINE,
        public_only=not settings.PROBE_ALLOW_PRIVATE, allowed_networks=_allowed_networks(),
    )
    with session:
        for page in pages[: _page_limit(request.scan_settings.get("maxPages"))]:
            url = f"{scheme}://{request.domain}{page if page.startswith('/') else '/' + page}"
            final_url, status, jar = _fetch_following_redirects(session, url)
            fetched.append({"url": url, "final_url": final_url, "status": status})
            for cookie in jar:
                cookies[(cookie["name"], cookie["domain"], cookie["path"])] = cookie
    return ScanResult(
        scan_id="",
        metadata={"runner": "probe", "pages": fetched, "cookies": sorted(cookies.values(), key=lambda c: c["name"])},
    )


def _page_limit(value: Any) -> int:
    return max(1, int(value)) if isinstance(value, int) and not isinstance(value, bool) else 50


def _allowed_networks() -> tuple:
    return tuple(ipaddress.ip_network(net) for net in settings.PROBE_ALLOWED_NETWORKS)


def _fetch_following_redirects(session, url: str, max_redirects: int = 5):
    # Redirects are followed by hand so that every hop's URL is checked; every
    # connection's address is checked by the session itself (schedules.http).
    jar: list[dict] = []
    for _ in range(max_redirects + 1):
        try:
            refuse_ambiguous_url(url)
            with session.get(url, timeout=_timeouts(), allow_redirects=False, stream=True) as response:
                read_body(response, max_bytes=settings.HTTP_MAX_RESPONSE_BYTES, deadline=session.deadline)
                jar.extend(_cookies_of(response))
                if response.is_redirect and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    continue
                return url, response.status_code, jar
        except AddressRefused as exc:
            raise ScanRefused(str(exc)) from None
    raise requests.TooManyRedirects(f"more than {max_redirects} redirects from {redact_userinfo(url)}")


def _cookies_of(response) -> list[dict]:
    found = []
    for cookie in response.cookies:
        rest = {k.lower(): v for k, v in getattr(cookie, "_rest", {}).items()}
        found.append(
            {
                "name": cookie.name,
                "domain": cookie.domain,
                "path": cookie.path,
                "secure": bool(cookie.secure),
                "httponly": "httponly" in rest,
                "samesite": rest.get("samesite") or "",
                "expires": cookie.expires,
            }
        )
    return found


def _timeouts() -> tuple[float, float]:
    return (settings.REQUEST_TIMEOUT, settings.REQUEST_TIMEOUT)


@lru_cache(maxsize=8)
def _load(path: str) -> Runner:
    return import_string(path)


def get_runner() -> Runner:
    if settings.SCAN_RUNNER:
        return _load(settings.SCAN_RUNNER)
    if settings.SCAN_API_URL:
        return http_runner
    return probe_runner


def as_result(value: Any) -> ScanResult:
    if isinstance(value, ScanResult):
        return value
    if isinstance(value, dict):
        return ScanResult(scan_id=str(value.get("scan_id") or ""), metadata=dict(value.get("metadata") or {}))
    return ScanResult()


@dataclass
class Outcome:
    result: ScanResult | None
    attempts: list[dict]
    error: BaseException | None = None
    error_details: dict | None = None


def run_with_retries(
    *, runner: Runner, request: ScanRequest, max_retries: int, backoff: float, stop: threading.Event
) -> Outcome:
    """Up to 1 + max_retries attempts with exponential backoff. This retries
    whole scans of any runner; HTTP-level retries stay with urllib3's Retry."""
    attempts: list[dict] = []
    for attempt in range(1, max_retries + 2):
        started = time.monotonic()
        try:
            result = as_result(runner(replace(request, attempt=attempt)))
        except (ScanRefused, ResponseTooLarge, DeadlineExceeded) as exc:
            attempts.append({"attempt": attempt, "error": f"{type(exc).__name__}: {exc}"})
            return _failed(attempts, exc)  # retrying cannot help
        except Exception as exc:  # noqa: BLE001 - any runner failure is recorded
            attempts.append({"attempt": attempt, "error": f"{type(exc).__name__}: {exc}",
                             "seconds": round(time.monotonic() - started, 3)})
            if attempt > max_retries or stop.wait(backoff * 2 ** (attempt - 1)):
                return _failed(attempts, exc)
            continue
        attempts.append({"attempt": attempt, "ok": True, "seconds": round(time.monotonic() - started, 3)})
        return Outcome(result=result, attempts=attempts)
    raise AssertionError("unreachable")


def _failed(attempts: list[dict], exc: BaseException) -> Outcome:
    details = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "attempts": len(attempts),
    }
    return Outcome(result=None, attempts=attempts, error=exc, error_details=details)
