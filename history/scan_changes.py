"""What changed since the last scan: a scan's cookies against those of the
previous successful scan of the same schedule.

Stored with the run, in ``metadata["changes"]`` (history.services.finish_execution):

    {"since": "<execution_id of the previous scan>" or None,
     "new": [cookie, ...],                   # in this scan, not in the previous one
     "gone": [cookie, ...],                  # in the previous scan, not in this one
     "moved_before_consent": [cookie, ...]}  # after consent last time, before consent now

Cookies are the records of the scan contract (``metadata["scan"]["cookies"]``:
name, domain, path, expires, secure, http_only, same_site, third_party,
phase). A cookie is the same cookie when its name, domain and path are the
same; any other field may change without making it new. "new" and
"moved_before_consent" hold this scan's records, "gone" the previous scan's.

The previous scan is the latest successful run of the same schedule, started
before this one, that recorded a scan. Failed, skipped, missed and other runs
never count, nor do successful runs without a scan. A schedule's first scan is
its baseline: ``since`` is None, every list is empty, and it raises no alert
(every cookie of a first scan would otherwise be "new").

This module reads only job_executions: the history app never imports the
schedules app, so the contract's field names are all it relies on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Iterable

from django.db.models import Subquery

from history.models import ExecutionStatus, JobExecution

BEFORE_CONSENT = "before_consent"
AFTER_CONSENT = "after_consent"
CHANGE_LISTS = ("new", "gone", "moved_before_consent")


# --- the comparison (pure) ------------------------------------------------------
def cookie_identity(cookie: dict) -> tuple[str, str, str]:
    """(name, domain, path): what makes two records the same cookie."""
    return (str(cookie.get("name", "")), str(cookie.get("domain") or "").lower(), str(cookie.get("path") or "/"))


def cookies_of(scan: Any) -> list[dict]:
    """The cookie records of a scan object; anything that is not one is left out."""
    cookies = scan.get("cookies") if isinstance(scan, dict) else None
    if not isinstance(cookies, list):
        return []
    return [cookie for cookie in cookies if isinstance(cookie, dict) and isinstance(cookie.get("name"), str)]


def _by_identity(cookies: Iterable[dict]) -> dict[tuple[str, str, str], dict]:
    """One record per cookie, in their order; a cookie listed twice keeps its
    earliest phase (before consent wins: phase is when it was first seen)."""
    found: dict[tuple[str, str, str], dict] = {}
    for cookie in cookies:
        key = cookie_identity(cookie)
        if key not in found or (cookie.get("phase") == BEFORE_CONSENT and found[key].get("phase") != BEFORE_CONSENT):
            found[key] = cookie
    return found


def compare_cookies(*, previous: Iterable[dict], current: Iterable[dict]) -> dict[str, list[dict]]:
    """new, gone and moved_before_consent, from two scans' cookie records."""
    before, now = _by_identity(previous), _by_identity(current)
    return {
        "new": [cookie for key, cookie in now.items() if key not in before],
        "gone": [cookie for key, cookie in before.items() if key not in now],
        "moved_before_consent": [
            cookie for key, cookie in now.items()
            if key in before and cookie.get("phase") == BEFORE_CONSENT and before[key].get("phase") == AFTER_CONSENT
        ],
    }


def baseline() -> dict:
    """The changes of a schedule's first scan: nothing to compare with."""
    return {"since": None, **{name: [] for name in CHANGE_LISTS}}


def scan_changes(*, scan: Any, previous: dict | None) -> dict:
    """The ``changes`` object of a scan, against ``previous`` ({"execution_id",
    "cookies"} of the previous successful scan, as previous_successful_scan
    returns it), or the baseline when there is none."""
    if previous is None:
        return baseline()
    return {"since": str(previous["execution_id"]),
            **compare_cookies(previous=cookies_of({"cookies": previous["cookies"]}), current=cookies_of(scan))}


def before_consent_news(changes: Any) -> list[dict]:
    """The cookies of a changes object that the alert is about, each with
    ``change`` "new" (a new cookie set before consent) or
    "moved_before_consent" (set after consent by the previous scan)."""
    if not isinstance(changes, dict):
        return []

    def listed(name: str) -> list[dict]:
        value = changes.get(name)
        return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []

    return ([{**c, "change": "new"} for c in listed("new") if c.get("phase") == BEFORE_CONSENT]
            + [{**c, "change": "moved_before_consent"} for c in listed("moved_before_consent")])


def has_changes(changes: Any) -> bool:
    return isinstance(changes, dict) and any(changes.get(name) for name in CHANGE_LISTS)


# --- selectors ------------------------------------------------------------------
def _scans():
    """Successful runs that recorded a scan."""
    return JobExecution.objects.filter(status=ExecutionStatus.SUCCESS, metadata__has_key="scan")


def previous_successful_scan(*, execution_id: uuid.UUID, started_at: datetime) -> dict | None:
    """{"execution_id", "cookies"} of the latest successful scan of the same
    schedule as ``execution_id`` started before ``started_at``, or None. One
    query; only the cookie list is read from the previous run's metadata."""
    schedule = JobExecution.objects.filter(pk=execution_id).values("schedule_id")[:1]
    row = (_scans().filter(schedule_id=Subquery(schedule), started_at__lt=started_at)
           .exclude(pk=execution_id).order_by("-started_at", "-execution_id")
           .values("execution_id", "metadata__scan__cookies").first())
    if row is None:
        return None
    return {"execution_id": row["execution_id"], "cookies": row["metadata__scan__cookies"]}


LATEST_BATCH = 100  # schedules per query


def latest_scan_changes(*, schedule_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """{schedule_id: {"execution_id", "domain", "started_at", "changes"}} of
    each schedule's latest successful scan (``changes`` None for a scan
    recorded before scans were compared). One query per LATEST_BATCH
    schedules: each schedule's latest is its own LIMIT 1 subquery on the
    (schedule, started_at) index, so a long history is never read."""
    found: dict[uuid.UUID, dict] = {}
    for start in range(0, len(schedule_ids), LATEST_BATCH):
        latest = [_scans().filter(schedule_id=schedule_id).order_by("-started_at", "-execution_id")
                  .values("execution_id")[:1] for schedule_id in schedule_ids[start:start + LATEST_BATCH]]
        rows = (JobExecution.objects.filter(execution_id__in=[Subquery(one) for one in latest])
                .values("schedule_id", "execution_id", "domain", "started_at", "metadata__changes"))
        found.update({row["schedule_id"]: {"execution_id": row["execution_id"], "domain": row["domain"],
                                           "started_at": row["started_at"], "changes": row["metadata__changes"]}
                      for row in rows})
    return found


def schedules_scanned_since(*, finished_after: datetime | Any) -> list[uuid.UUID]:
    """Schedules with a successful scan that finished after ``finished_after``
    (a datetime or a database expression such as Now() - interval)."""
    return list(_scans().filter(completed_at__gte=finished_after, schedule_id__isnull=False)
                .order_by().values_list("schedule_id", flat=True).distinct())
