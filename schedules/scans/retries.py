"""Retries: one execution is up to 1 + maxRetries attempts of its runner, with backoff.
Whole scans are retried here; HTTP-level retries stay with urllib3's Retry.
Every error text recorded here (attempts, message, traceback) is redacted
(scanner_project.redaction): a runner's exception may name SCAN_API_URL.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, replace

from scanner_project.outbound.http import DeadlineExceeded, ResponseTooLarge
from scanner_project.redaction import redact, redact_data
from schedules.scans.request import Runner, ScanRefused, ScanRequest, ScanResult, as_result


@dataclass
class Outcome:
    result: ScanResult | None
    attempts: list[dict]
    error: BaseException | None = None
    error_details: dict | None = None


# Failures that a second attempt would meet again.
FINAL_ERRORS = (ScanRefused, ResponseTooLarge, DeadlineExceeded)


def run_with_retries(
    *, runner: Runner, request: ScanRequest, max_retries: int, backoff: float, stop: threading.Event
) -> Outcome:
    """Up to 1 + max_retries attempts with exponential backoff."""
    attempts: list[dict] = []
    for attempt in range(1, max_retries + 2):
        started = time.monotonic()
        try:
            result = as_result(runner(replace(request, attempt=attempt)))
        except FINAL_ERRORS as exc:
            attempts.append(_failed_attempt(attempt, exc, started))
            return _failed(attempts, exc)
        except Exception as exc:  # noqa: BLE001 - any runner failure is recorded
            attempts.append(_failed_attempt(attempt, exc, started))
            if attempt > max_retries or stop.wait(backoff * 2 ** (attempt - 1)):
                return _failed(attempts, exc)
            continue
        attempts.append({"attempt": attempt, "ok": True, "seconds": round(time.monotonic() - started, 3)})
        return Outcome(result=result, attempts=attempts)
    raise AssertionError("unreachable")


def error_message(exc: BaseException) -> str:
    """``Type: message`` of a runner's exception, as stored and shown: redacted."""
    return redact(f"{type(exc).__name__}: {exc}")


def _failed_attempt(attempt: int, exc: BaseException, started: float) -> dict:
    return {"attempt": attempt, "error": error_message(exc), "seconds": round(time.monotonic() - started, 3)}


def _failed(attempts: list[dict], exc: BaseException) -> Outcome:
    details = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "attempts": len(attempts),
    }
    return Outcome(result=None, attempts=attempts, error=exc, error_details=redact_data(details))
