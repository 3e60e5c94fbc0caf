"""Import schedules from the upstream API (``sync_schedules_from_api``).

The answer is read whole (see api_client), every entry is checked with the
model's own ``full_clean()``, and all writes happen in one transaction with
one change notice after commit. An unreadable answer changes nothing; an
invalid entry is reported and changes nothing, while the valid ones import.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from audit.actor import on_behalf
from audit.models import ActorKind
from scanner_project.metrics import SYNC_FAILURES, SYNC_RESULTS
from scanner_project.redaction import redact, shorten
from schedules import hooks
from schedules.importer.client import SyncError, fetch_entries
from schedules.importer.config import importer_config
from schedules.importer.entries import Entry, answer_ids, parse_entries
from schedules.models import Schedule, validate_scan_settings
from schedules.notify import publish_schedule_changes

logger = logging.getLogger(__name__)

__all__ = ["SyncError", "SyncConflict", "TooManyMissing", "sync_schedules_from_api", "import_entries", "run_periodic_sync"]

# The fields an API entry determines; anything else on the row is local state.
SYNCED_FIELDS = ("domain", "frequency", "time_config", "timezone", "scan_settings", "spread_minutes")
_STORED_FIELDS = ("schedule_id", "domain_config_id", *SYNCED_FIELDS, "enabled", "edited_manually", "from_api", "updated_at")
PERIODIC_LOCK_KEY = "schedules:api-sync:interval"
_BATCH = 500


class SyncConflict(SyncError):
    """Rows changed between reading and writing; nothing was written."""


class TooManyMissing(SyncError):
    """--disable-missing would disable more than half of the API's schedules."""


@dataclass
class _Plan:
    create: list[Schedule] = field(default_factory=list)
    update: list[Schedule] = field(default_factory=list)
    disable: list[Schedule] = field(default_factory=list)
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    read_at: dict[Any, Any] = field(default_factory=dict)  # schedule_id -> updated_at as read


def sync_schedules_from_api(
    *,
    url: str | None = None,
    dry_run: bool = False,
    disable_missing: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Fetch the API's schedules and upsert them by domain_config_id.

    Returns ``{"created", "updated", "skipped"}`` counts and the lists
    ``rejected`` ("id: field: reason"), ``skipped_reasons``, ``held_back``
    (edited by hand, not overwritten without ``force``), ``missing`` (stored but
    not in the answer), ``disabled`` (missing ones switched off with
    ``disable_missing``) and ``changes`` (one line per write, or would-be write
    with ``dry_run``). Raises ``SyncError`` when the API could not be read;
    nothing is changed then.
    """
    config = importer_config()
    try:
        entries = fetch_entries(
            url=config.api_url if url is None else url,
            token=config.api_token,
            timeout=config.request_timeout,
            deadline=config.deadline,
            max_bytes=config.max_bytes,
            retries=config.retries,
            backoff=config.backoff,
        )
    except SyncError as exc:
        SYNC_FAILURES.inc()
        logger.warning("API sync failed: %s", redact(str(exc)))
        raise
    return import_entries(entries=entries, dry_run=dry_run, disable_missing=disable_missing, force=force)


def import_entries(
    *, entries: list[Any], dry_run: bool = False, disable_missing: bool = False, force: bool = False
) -> dict[str, Any]:
    """The import half of the sync, for an already-read ``data`` list."""
    parsed = parse_entries(entries)
    plan = _Plan(rejected=parsed.rejected, skipped_reasons=parsed.skipped_reasons, skipped=len(parsed.skipped_reasons))
    in_answer = set(answer_ids(entries))
    now = timezone.now()
    # Plain rows, not model instances: an unchanged re-import of 10,000 entries
    # builds no model object at all.
    stored = {row["domain_config_id"]: row for row in Schedule.objects.values(*_STORED_FIELDS)}
    next_runs: dict[tuple, Any] = {}
    for entry in parsed.entries:
        _plan_entry(entry=entry, current=stored.get(entry.domain_config_id), plan=plan, force=force, now=now,
                    next_runs=next_runs)
    for dcid, row in sorted(stored.items()):
        if dcid in in_answer or not row["from_api"]:
            continue  # only what the API created can go missing from it
        plan.missing.append(dcid)
        if not disable_missing or not row["enabled"]:
            continue
        if row["edited_manually"] and not force:
            plan.held_back.append(dcid)
            continue
        plan.read_at[row["schedule_id"]] = row["updated_at"]
        plan.disable.append(Schedule(**{**row, "enabled": False, "next_run": None, "updated_at": now}))
        plan.changes.append(f"disable {dcid} ({row['domain']}): not in the API's answer")
    _refuse_mass_disable(plan=plan, api_owned=sum(row["from_api"] for row in stored.values()), force=force)
    if not dry_run:
        with on_behalf(ActorKind.API_SYNC):
            _write(plan=plan)
    result = {
        "created": len(plan.create),
        "updated": len(plan.update),
        "skipped": plan.skipped,
        "rejected": plan.rejected,
        "skipped_reasons": plan.skipped_reasons,
        "held_back": plan.held_back,
        "missing": plan.missing,
        "disabled": [s.domain_config_id for s in plan.disable],
        "changes": plan.changes,
        "dry_run": dry_run,
    }
    _count(result)
    logger.info(
        "API sync%s: %d created, %d updated, %d skipped, %d rejected, %d held back, %d missing, %d disabled",
        " (dry run)" if dry_run else "", result["created"], result["updated"], result["skipped"],
        len(plan.rejected), len(plan.held_back), len(plan.missing), len(result["disabled"]),
    )
    return result


def _refuse_mass_disable(*, plan: _Plan, api_owned: int, force: bool) -> None:
    # An empty or truncated answer (an upstream bug) would otherwise switch
    # off most of the fleet.
    if len(plan.disable) > api_owned / 2 and not force:
        SYNC_FAILURES.inc()
        raise TooManyMissing(
            f"the answer lacks {len(plan.disable)} of the {api_owned} schedules the API created; refusing to "
            "disable more than half of them (check the API, or pass --force); nothing written"
        )


def _scan_settings_problem(*, dcid: str, scan_settings: dict[str, Any]) -> str | None:
    """The model's own scan-settings rule, reported with the entry's id."""
    try:
        validate_scan_settings(scan_settings)
    except ValidationError as exc:
        return f"{dcid}: {exc.messages[0]}"
    return None


def _validation_reason(*, dcid: str, error: ValidationError) -> str:
    reasons = []
    for name, messages in error.message_dict.items():
        # The model's own messages already name the field and value; Django's
        # generic ones ("not a valid choice") only repeat them.
        own = [m for m in messages if m.startswith(name)]
        reasons.extend(own or [f"{name}: {m}" for m in messages])
    return shorten(f"{dcid}: " + "; ".join(reasons), 500)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _differs(stored: Any, incoming: Any) -> bool:
    if stored != incoming:
        return True
    # In Python 1 == 1.0 == True; in the JSON the runner reads they differ.
    return isinstance(stored, (dict, list)) and _canonical(stored) != _canonical(incoming)


def _plan_entry(
    *, entry: Entry, current: dict[str, Any] | None, plan: _Plan, force: bool, now, next_runs: dict[tuple, Any]
) -> None:
    dcid = entry.domain_config_id
    if current is not None:
        changed = [name for name in SYNCED_FIELDS if _differs(current[name], entry.values[name])]
        if not changed:
            # Identical to the stored row, which was validated when written:
            # skipping validation keeps an unchanged re-import cheap.
            plan.skipped += 1
            return
        if current["edited_manually"] and not force:
            plan.held_back.append(dcid)  # counted here only, not also as skipped
            return
        candidate = Schedule(**current)
        candidate._state.adding = False
    else:
        changed = []
        candidate = Schedule(domain_config_id=dcid)
    for name, value in entry.values.items():
        setattr(candidate, name, value)
    problem = _scan_settings_problem(dcid=dcid, scan_settings=candidate.scan_settings)
    if problem:
        plan.rejected.append(problem)
        return
    try:
        candidate.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        plan.rejected.append(_validation_reason(dcid=dcid, error=exc))
        return
    candidate.edited_manually = False
    candidate.from_api = True
    # next_run depends only on these; 10,000 daily entries share a few dozen.
    key = (candidate.frequency, _canonical(candidate.time_config), candidate.timezone, candidate.enabled,
           candidate.spread_offset)
    if key not in next_runs:
        next_runs[key] = candidate.compute_next_run(now=now)
    candidate.next_run = next_runs[key]
    candidate.updated_at = now
    if current is None:
        candidate.created_at = now
        plan.create.append(candidate)
        plan.changes.append(f"create {dcid} ({candidate.domain}): {candidate.description}")
    else:
        plan.read_at[candidate.schedule_id] = current["updated_at"]
        plan.update.append(candidate)
        plan.changes.append(f"update {dcid} ({candidate.domain}): {', '.join(changed)}")


def _write(*, plan: _Plan) -> None:
    touched = [*plan.update, *plan.disable]
    if not plan.create and not touched:
        return
    try:
        with transaction.atomic():
            if touched:
                # Lock what we overwrite, and give up if someone (an admin edit)
                # changed it since we read it rather than silently undo their edit.
                before = dict(
                    Schedule.objects.select_for_update()
                    .filter(schedule_id__in=list(plan.read_at))
                    .values_list("schedule_id", "updated_at")
                )
                stale = [pk for pk, read in plan.read_at.items() if before.get(pk) != read]
                if stale:
                    SYNC_FAILURES.inc()
                    raise SyncConflict(f"{len(stale)} schedule(s) changed during the import; nothing written, run it again")
            Schedule.objects.bulk_create(plan.create, batch_size=_BATCH)
            Schedule.objects.bulk_update(
                plan.update, fields=[*SYNCED_FIELDS, "edited_manually", "from_api", "next_run", "updated_at"], batch_size=_BATCH
            )
            Schedule.objects.bulk_update(plan.disable, fields=["enabled", "next_run", "updated_at"], batch_size=_BATCH)
            ids = [s.schedule_id for s in (*plan.create, *touched)]
            transaction.on_commit(lambda: publish_schedule_changes(ids))
    except IntegrityError as exc:
        if "domain_config_id" not in str(exc):
            raise SyncError(f"the database refused the import; nothing written ({type(exc).__name__}: {redact(shorten(str(exc)))})") from None
        # Another writer created one of these domain_config_ids meanwhile.
        raise SyncConflict(f"a schedule was created during the import; nothing written ({type(exc).__name__})") from None
    except DatabaseError as exc:
        raise SyncError(f"the database refused the import; nothing written ({type(exc).__name__}: {redact(shorten(str(exc)))})") from None


def _count(result: dict[str, Any]) -> None:
    if result["dry_run"]:
        return
    for outcome in ("created", "updated", "skipped"):
        if result[outcome]:
            SYNC_RESULTS.labels(outcome=outcome).inc(result[outcome])
    for outcome in ("rejected", "held_back", "disabled"):
        if result[outcome]:
            SYNC_RESULTS.labels(outcome=outcome).inc(len(result[outcome]))


def run_periodic_sync(*, instance_id: str, enabled: bool | None = None,
                      interval: float | None = None) -> dict[str, Any] | None:
    """One import per API_SYNC_INTERVAL across all instances; never raises.

    The first instance to ``cache.add`` the key (SET NX on Redis) imports; the
    key expires a little before the next interval so that the same instance's
    next tick, arriving slightly early, is not locked out by its own key.
    Returns the result, ``{"error": message}`` when the import failed, or None
    when sync is off or another instance has this interval. Unless sync is
    off, the listeners registered in schedules.hooks hear it (alerts count
    failures in a row).
    """
    # The runtime passes its own configuration; the settings are the default.
    config = importer_config()
    if not (config.enabled if enabled is None else enabled):
        return None
    result = _periodic_import(instance_id=instance_id, interval=interval or config.interval)
    hooks.notify_sync_result(result, instance_id=instance_id)
    return result


def _periodic_import(*, instance_id: str, interval: float) -> dict[str, Any] | None:
    hold = max(1, int(interval - min(5.0, interval * 0.1)))
    try:
        if not cache.add(PERIODIC_LOCK_KEY, instance_id, timeout=hold):
            logger.debug("API sync: %s holds this interval", cache.get(PERIODIC_LOCK_KEY))
            return None
    except Exception:  # noqa: BLE001 - the scheduler loop must keep running
        logger.exception("API sync: could not take the interval lock; skipping this interval")
        return None
    try:
        return sync_schedules_from_api()
    except SyncError as exc:
        return {"error": redact(str(exc))}  # goes on into the sync alert's text
    except Exception as exc:  # noqa: BLE001
        logger.exception("API sync failed unexpectedly")
        return {"error": redact(shorten(f"{type(exc).__name__}: {exc}", 500))}
