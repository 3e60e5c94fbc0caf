"""HTTP API: the scan runs at SCAN_API_URL; this runner POSTs the domain and its scan settings there.
A ``scan`` object in the answer, in the contract's shape, is stored like a browser scan's.

Every worker thread of the process posts through one keep-alive pool
(``PooledSession``, keeping up to MAX_WORKERS connections), so a scan costs no
new TCP connection and no new TLS handshake. Each POST keeps its own SCAN_DEADLINE
over connect, TLS, headers and body, on whichever pooled connection it holds.
Redirects are not followed: a 3xx answer is an error that names its Location.
"""

from __future__ import annotations

import threading

import requests
from django.views.decorators.debug import sensitive_variables

from scanner_project.outbound.http import BearerAuth, read_body
from scanner_project.outbound.pool import PooledSession
from schedules.importer.client import redact_url
from schedules.scans import result
from schedules.scans.config import ScanConfig
from schedules.scans.request import ScanRequest, ScanResult

_pool_lock = threading.Lock()
_session: PooledSession | None = None


class ScanApiRedirected(requests.HTTPError):
    """The scan API answered with a redirect, which is never followed."""


def scan_api_session(*, maxsize: int) -> PooledSession:
    """The process's one pool for the scan API, built on first use with
    ``maxsize`` connections (every runner of the process shares it)."""
    global _session
    session = _session
    if session is None:
        with _pool_lock:
            if _session is None:
                _session = PooledSession(maxsize=maxsize)
            session = _session
    return session


def close_pool() -> None:
    """Closes the pooled connections; the next scan builds the pool again."""
    global _session
    with _pool_lock:
        session, _session = _session, None
    if session is not None:
        session.close()


class ScanApiClient:
    """The scan API runner (callable with a ScanRequest), built from a ScanConfig."""

    def __init__(self, config: ScanConfig) -> None:
        self.config = config

    @sensitive_variables("session", "auth", "config")
    def __call__(self, request: ScanRequest) -> ScanResult:
        # A POST that may have started a scan is not retried here; the whole scan is
        # retried by run_with_retries, recorded as attempts of the execution. The
        # one exception: a kept-alive connection that the scan API had closed
        # before answering is posted again on a new one, with the same key.
        # Idempotency-Key: a run whose instance died is delivered again by another
        # (history.queue.rescue_orphaned) with the same key; the scan API can
        # answer the repeat without scanning twice.
        config = self.config
        payload = {
            "domain": request.domain,
            "domain_config_id": request.domain_config_id,
            "schedule_id": str(request.schedule_id),
            "execution_id": str(request.execution_id),
            "scheduled_for": request.scheduled_for.isoformat() if request.scheduled_for else None,
            "settings": request.scan_settings,
        }
        session = scan_api_session(maxsize=config.api_pool_size)
        auth = BearerAuth(config.api_token) if config.api_token else None
        with session.call(config.deadline) as deadline:
            with session.post(config.api_url, json=payload, timeout=config.timeouts, stream=True, auth=auth,
                              allow_redirects=False, headers={"Idempotency-Key": request.idempotency_key}) as response:
                body = read_body(response, max_bytes=config.max_response_bytes, deadline=deadline)
                _refuse_redirect(response)
                response.raise_for_status()
        answer = requests.models.complexjson.loads(body or b"{}")
        if not isinstance(answer, dict):
            answer = {}
        scan_id = answer.get("scan_id") or answer.get("id") or (answer.get("data") or {}).get("scan_id") or ""
        metadata = {"runner": "http", "status_code": response.status_code}
        scan = result.from_answer(answer.get("scan"), domain=request.domain)
        if scan is not None:
            metadata["scan"] = scan
        return ScanResult(scan_id=str(scan_id), metadata=metadata)


def http_runner(request: ScanRequest) -> ScanResult:
    """One POST to the scan API with the settings as they are now, for a
    single call (tests, a script, the benchmark); it uses the process's pool.
    get_runner builds a ScanApiClient once instead, also for a SCAN_RUNNER
    path that names this function."""
    return ScanApiClient(ScanConfig.from_settings())(request)


def _refuse_redirect(response: requests.Response) -> None:
    # Followed, a 307/308 would POST the payload (and a 301/302 would GET) at
    # wherever the Location says; the scan API's address is SCAN_API_URL only.
    if 300 <= response.status_code < 400:
        location = redact_url(response.headers.get("Location") or "") or "no Location"
        status = f"{response.status_code} {response.reason or ''}".rstrip()
        raise ScanApiRedirected(
            f"{status}: the scan API redirected the POST to {location}; "
            "redirects are not followed: set SCAN_API_URL to the address that takes the POST",
            response=response,
        )
