"""Request: what a runner is handed for one attempt of one execution, and what it gives back.
A runner is any callable taking a ScanRequest; it returns a ScanResult (or a dict) or raises.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable


@dataclass(frozen=True)
class ScanRequest:
    schedule_id: uuid.UUID
    execution_id: uuid.UUID
    domain: str
    domain_config_id: str
    scheduled_for: datetime | None
    scan_settings: dict
    trigger: str = "scheduled"
    attempt: int = 1  # of 1 + maxRetries (schedules.scans.retries)

    @property
    def idempotency_key(self) -> str:
        """The same for every delivery of one attempt of one execution: a
        repeat after a crash is recognisable, a retry after a failure is not."""
        return str(self.execution_id) if self.attempt == 1 else f"{self.execution_id}:{self.attempt}"


@dataclass
class ScanResult:
    scan_id: str = ""
    # Stored as JobExecution.metadata; a scan's findings go under "scan"
    # (the contract in schedules.scans.result).
    metadata: dict = field(default_factory=dict)


class ScanRefused(Exception):
    """A scan that must not be attempted (e.g. it resolves to a private address).
    Retrying cannot help, so it is not retried."""


Runner = Callable[[ScanRequest], Any]


def as_result(value: Any) -> ScanResult:
    if isinstance(value, ScanResult):
        return value
    if isinstance(value, dict):
        return ScanResult(scan_id=str(value.get("scan_id") or ""), metadata=dict(value.get("metadata") or {}))
    return ScanResult()


def noop_runner(request: ScanRequest) -> ScanResult:
    """Does nothing: for benchmarks of the scheduler itself."""
    return ScanResult(scan_id="", metadata={"runner": "noop"})
