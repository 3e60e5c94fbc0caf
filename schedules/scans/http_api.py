"""HTTP API: the scan runs at SCAN_API_URL; this runner POSTs the domain and its settings.
A ``scan`` object in the answer, in the contract's shape, is stored like a browser scan's.
"""

from __future__ import annotations

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from ..http import build_session, read_body
from . import result
from .request import ScanRequest, ScanResult


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
    if not isinstance(answer, dict):
        answer = {}
    scan_id = answer.get("scan_id") or answer.get("id") or (answer.get("data") or {}).get("scan_id") or ""
    metadata = {"runner": "http", "status_code": response.status_code}
    scan = result.from_answer(answer.get("scan"), domain=request.domain)
    if scan is not None:
        metadata["scan"] = scan
    return ScanResult(scan_id=str(scan_id), metadata=metadata)


def _timeouts() -> tuple[float, float]:
    return (settings.REQUEST_TIMEOUT, settings.REQUEST_TIMEOUT)
