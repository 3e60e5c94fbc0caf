"""Writing audit entries from the model write paths (schedules.models,
audit.tracked for alert channels and pauses).

Every path passes the model class and the primary keys it touches; values
before and after are read from the database around the write, in its
transaction, so expressions (F(), Case() from bulk_update) are recorded as
the values they produced. Bookkeeping columns the runtime writes are not
changes anyone made and are left out. A field named like a secret is recorded
as changed without its value, and user info in URLs is hidden.

Each path takes the chain lock (audit.chain) before it touches the rows, so
that writers queue for the lock holding no row locks (no deadlock between a
writer waiting for the chain and the chain's holder waiting for its rows).
"""

from __future__ import annotations

import contextlib
import json
import re
import string
from typing import Any, Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from audit import chain
from audit.actor import current
from audit.models import AuditAction, AuditEntry
from scanner_project.redaction import redact_userinfo

NOT_AUDITED = frozenset({"next_run", "last_run", "last_status", "updated_at", "created_at"})
SECRET_NAME = re.compile(r"secret|token|password|passwd|api[_-]?key|signing", re.IGNORECASE)
HIDDEN, SET, CHANGED = "(hidden)", "(set)", "(changed)"
_CHUNK = 5000


def audited_fields(model, names: Iterable[str] | None = None) -> list[str]:
    """Attribute names (profile_id, not profile) of the audited columns, all or of ``names``."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in NOT_AUDITED]
    if names is not None:
        wanted = set(names)
        fields = [f for f in fields if f.name in wanted or f.attname in wanted]
    return [f.attname for f in fields]


def _label_format(model) -> str:
    """``audit_label`` of the model (a format over its columns), else domain (config id), else name."""
    names = {f.attname for f in model._meta.concrete_fields}
    if getattr(model, "audit_label", None):
        return model.audit_label
    if "domain_config_id" in names:
        return "{domain} ({domain_config_id})"
    return "{name}" if "name" in names else "{%s}" % model._meta.pk.attname


def _label_fields(model) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(_label_format(model)) if name]


def _label(model, pk, row: dict) -> str:
    label = _label_format(model).format(**{name: row.get(name, pk) for name in _label_fields(model)})
    return redact_userinfo(label)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _shown(value: Any) -> Any:
    if isinstance(value, str):
        return redact_userinfo(value)
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if isinstance(value, dict):
        return {key: HIDDEN if SECRET_NAME.search(key) else _shown(item) for key, item in value.items()}
    return value


def change(field: str, before: Any, after: Any) -> list:
    """[before, after] as recorded: a secret only as set / changed / removed; URL user info and
    secret-named keys inside JSON values hidden."""
    if SECRET_NAME.search(field):
        had, has = before not in (None, ""), after not in (None, "")
        return [HIDDEN if had else None, (CHANGED if had else SET) if has else None]
    before, after = _plain(before), _plain(after)
    shown = [_shown(before), _shown(after)]
    if before != after and shown[0] == shown[1]:
        shown[1] = CHANGED  # differs only in the hidden part
    return shown


def snapshot(model, pks: list, fields: list[str]) -> dict[Any, dict]:
    columns = list(dict.fromkeys([*fields, *(n for n in _label_fields(model) if n != model._meta.pk.attname)]))
    rows: dict[Any, dict] = {}
    for start in range(0, len(pks), _CHUNK):
        for row in model._base_manager.filter(pk__in=pks[start:start + _CHUNK]).values("pk", *columns):
            rows[row.pop("pk")] = row
    return rows


def _new(model_name: str, pk, label: str, action: str, changes: dict) -> AuditEntry:
    actor = current()
    return AuditEntry(model=model_name, object_id=str(pk), object_label=label[:300], action=action,
                      actor_kind=actor.kind, actor=actor.name[:300], changes=_plain(changes))


def _entry(model, pk, row: dict, action: str, changes: dict) -> AuditEntry:
    return _new(model._meta.model_name, pk, _label(model, pk, row), action, changes)


def _write(entries: list[AuditEntry]) -> None:
    if entries:
        AuditEntry.objects.bulk_create(entries, batch_size=_CHUNK)


@contextlib.contextmanager
def locked():
    """The chain lock, held until the transaction ends (take it before touching audited rows)."""
    with transaction.atomic():
        chain.lock()
        yield


@contextlib.contextmanager
def tracking(model, pks: list, *, names: Iterable[str] | None = None):
    """Record the audited fields of rows ``pks`` that the enclosed write changed."""
    fields = audited_fields(model, names)
    if not fields or not pks:
        yield
        return
    with locked():
        before = snapshot(model, pks, fields)
        yield
        after = snapshot(model, list(before), fields)
        entries = []
        for pk, old in before.items():
            new = after.get(pk)
            if new is None:
                continue
            changes = {f: change(f, old[f], new[f]) for f in fields if _plain(old[f]) != _plain(new[f])}
            if changes:
                entries.append(_entry(model, pk, new, AuditAction.UPDATE, changes))
        _write(entries)


def record_created(model, pks: list) -> None:
    if not pks:
        return
    fields = audited_fields(model)
    with locked():
        _write([_entry(model, pk, row, AuditAction.CREATE,
                       {f: change(f, None, row[f]) for f in fields if row[f] is not None})
                for pk, row in snapshot(model, pks, fields).items()])


@contextlib.contextmanager
def recording_delete(model, pks: list):
    """Entries for rows about to be deleted (read before, written after the delete)."""
    if not pks:
        yield
        return
    fields = audited_fields(model)
    with locked():
        entries = [_entry(model, pk, row, AuditAction.DELETE, {f: change(f, row[f], None) for f in fields})
                   for pk, row in snapshot(model, pks, fields).items()]
        yield
        _write(entries)


def record_event(model, pks: list, *, action: str, changes: dict) -> None:
    """An entry per row for a change outside its columns (pause, resume)."""
    if not pks:
        return
    with locked():
        _write([_entry(model, pk, row, action, changes) for pk, row in snapshot(model, pks, []).items()])


def record(*, model: str, object_id: str, label: str, action: str, changes: dict) -> AuditEntry:
    """One entry about something that is not a row (the trail's own pruning)."""
    entry = _new(model, object_id, label, action, changes)
    entry.save()
    return entry
