"""Writing audit entries from the model write paths (schedules.models).

Every path passes the model class and the primary keys it touches; values
before and after are read from the database around the write, in its
transaction, so expressions (F(), Case() from bulk_update) are recorded as
the values they produced. Bookkeeping columns the runtime writes are not
changes anyone made and are left out.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterable

from django.core.serializers.json import DjangoJSONEncoder

from .actor import current
from .models import AuditAction, AuditEntry

NOT_AUDITED = frozenset({"next_run", "last_run", "last_status", "updated_at", "created_at"})
_CHUNK = 5000


def audited_fields(model, names: Iterable[str] | None = None) -> list[str]:
    """Attribute names (profile_id, not profile) of the audited columns, all or of ``names``."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in NOT_AUDITED]
    if names is not None:
        wanted = set(names)
        fields = [f for f in fields if f.name in wanted or f.attname in wanted]
    return [f.attname for f in fields]


def _label_fields(model) -> tuple[str, ...]:
    names = {f.attname for f in model._meta.concrete_fields}
    return ("domain", "domain_config_id") if "domain_config_id" in names else ("name",)


def _label(model, row: dict) -> str:
    parts = [str(row.get(name, "")) for name in _label_fields(model)]
    return parts[0] + (f" ({parts[1]})" if len(parts) > 1 else "")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(model, pks: list, fields: list[str]) -> dict[Any, dict]:
    columns = list(dict.fromkeys([*fields, *_label_fields(model)]))
    rows: dict[Any, dict] = {}
    for start in range(0, len(pks), _CHUNK):
        for row in model._base_manager.filter(pk__in=pks[start:start + _CHUNK]).values("pk", *columns):
            rows[row.pop("pk")] = row
    return rows


def _entry(model, pk, row: dict, action: str, changes: dict) -> AuditEntry:
    actor = current()
    return AuditEntry(model=model._meta.model_name, object_id=pk, object_label=_label(model, row)[:300],
                      action=action, actor_kind=actor.kind, actor=actor.name[:300], changes=_plain(changes))


def _write(entries: list[AuditEntry]) -> None:
    if entries:
        AuditEntry.objects.bulk_create(entries, batch_size=_CHUNK)


@contextlib.contextmanager
def tracking(model, pks: list, *, names: Iterable[str] | None = None):
    """Record the audited fields of rows ``pks`` that the enclosed write changed."""
    fields = audited_fields(model, names)
    if not fields or not pks:
        yield
        return
    before = snapshot(model, pks, fields)
    yield
    after = snapshot(model, list(before), fields)
    entries = []
    for pk, old in before.items():
        new = after.get(pk)
        if new is None:
            continue
        changes = {f: [old[f], new[f]] for f in fields if _plain(old[f]) != _plain(new[f])}
        if changes:
            entries.append(_entry(model, pk, new, AuditAction.UPDATE, changes))
    _write(entries)


def record_created(model, pks: list) -> None:
    fields = audited_fields(model)
    _write([_entry(model, pk, row, AuditAction.CREATE, {f: [None, row[f]] for f in fields if row[f] is not None})
            for pk, row in snapshot(model, pks, fields).items()])


def deleted(model, pks: list) -> list[AuditEntry]:
    """Entries for rows about to be deleted (read now, written by ``_write`` after)."""
    fields = audited_fields(model)
    return [_entry(model, pk, row, AuditAction.DELETE, {f: [row[f], None] for f in fields})
            for pk, row in snapshot(model, pks, fields).items()]


@contextlib.contextmanager
def recording_delete(model, pks: list):
    entries = deleted(model, pks)
    yield
    _write(entries)


def record_event(model, pks: list, *, action: str, changes: dict) -> None:
    """An entry per row for a change outside its columns (pause, resume)."""
    _write([_entry(model, pk, row, action, changes) for pk, row in snapshot(model, pks, []).items()])
