"""The change log behind live changes (ScheduleChange) and the base model and
QuerySet whose every ORM write records in it and in the audit trail."""

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from django.db import models, transaction
from django.db.models.functions import Now

from audit import recording as audit

# Columns the runtime writes about a schedule (bookkeeping, not its definition):
# writing them is no change for the schedulers to apply.
BOOKKEEPING_FIELDS = frozenset({"next_run", "last_run", "last_status", "updated_at"})


class ScheduleChange(models.Model):
    """One row per changed schedule or profile, written in the same transaction
    as the change (the exact change marker behind live changes).

    Running instances read the rows past the last id they handled, so a delete
    is found as fast as an edit, by id rather than inferred. Every ORM write
    path records here: save and delete, and the QuerySet's update, delete,
    bulk_create and bulk_update (ChangeRecordingQuerySet). Raw SQL writes of
    the bookkeeping columns record nothing, on purpose.
    """

    id = models.BigAutoField(primary_key=True)
    schedule_id = models.UUIDField(null=True, db_index=False)
    profile_id = models.UUIDField(null=True, db_index=False)
    changed_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "schedule_changes"

    @classmethod
    def record(cls, *, schedule_ids: Iterable = (), profile_ids: Iterable = ()) -> None:
        rows = [cls(schedule_id=i) for i in schedule_ids] + [cls(profile_id=i) for i in profile_ids]
        if rows:
            cls.objects.bulk_create(rows, batch_size=5000)


def _record_changes(model: "type[ChangeRecordingModel]", pks: Iterable, *, deleting: bool = False) -> None:
    pks = list(pks)
    ScheduleChange.record(**{model.change_ids: pks})
    if deleting and (unlinked := model.unlinked_by_delete(pks)):
        related_model, related_pks, _ = unlinked
        _record_changes(related_model, related_pks)


@contextlib.contextmanager
def _audited_delete(model: "type[ChangeRecordingModel]", pks: list) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(audit.recording_delete(model, pks))
        if unlinked := model.unlinked_by_delete(pks):
            related_model, related_pks, field_name = unlinked
            stack.enter_context(audit.tracking(related_model, list(related_pks), names=[field_name]))
        yield


class ChangeRecordingQuerySet(models.QuerySet):
    """Bulk writes record their rows in ScheduleChange, like save() does, and
    in the audit trail (audit.recording)."""

    def update(self, **kwargs):
        if set(kwargs) <= BOOKKEEPING_FIELDS:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            _record_changes(self.model, pks)
            with audit.tracking(self.model, pks, names=kwargs):
                return super().update(**kwargs)

    def delete(self):
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            _record_changes(self.model, pks, deleting=True)
            with _audited_delete(self.model, pks):
                return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            pks = [obj.pk for obj in created]
            _record_changes(self.model, pks)
            audit.record_created(self.model, pks)
            return created

    # bulk_update() goes through update(), which records.


class ChangeRecordingModel(models.Model):
    """save() and delete() of a single row record it in ScheduleChange and the audit trail.

    A subclass declares how: ``change_ids`` and ``unlinked_on_delete``.
    """

    # The keyword of ScheduleChange.record that takes this model's ids.
    change_ids: ClassVar[str] = "schedule_ids"
    # The reverse relation (a related_name) whose rows a delete of this model
    # unlinks (on_delete=SET_NULL). Django does that with a plain UPDATE,
    # which records nothing, so the delete records them as changed; None: no such rows.
    unlinked_on_delete: ClassVar[str | None] = None

    objects = ChangeRecordingQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def unlinked_by_delete(cls, pks: Iterable) -> "tuple[type[ChangeRecordingModel], Any, str] | None":
        """(model, a query of its ids, the field) of the rows a delete of ``pks`` unlinks, if any."""
        if cls.unlinked_on_delete is None:
            return None
        relation = cls._meta.get_field(cls.unlinked_on_delete)
        field_name = relation.field.name
        related_pks = relation.related_model.objects.filter(**{f"{field_name}__in": pks}).values_list("pk", flat=True)
        return relation.related_model, related_pks, field_name

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and set(update_fields) <= BOOKKEEPING_FIELDS:
            return super().save(*args, **kwargs)
        adding = self._state.adding
        with transaction.atomic(using=kwargs.get("using")):
            with contextlib.nullcontext() if adding else audit.tracking(type(self), [self.pk], names=update_fields):
                super().save(*args, **kwargs)
            if adding:
                audit.record_created(type(self), [self.pk])
            _record_changes(type(self), [self.pk])

    def delete(self, *args, **kwargs):
        with transaction.atomic(using=kwargs.get("using")):
            _record_changes(type(self), [self.pk], deleting=True)
            with _audited_delete(type(self), [self.pk]):
                return super().delete(*args, **kwargs)
