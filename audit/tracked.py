"""Audited models outside the schedules app (alert channels, pause rows):
their own save() and delete(), and the QuerySet's update(), delete(),
bulk_create() and bulk_update() (through update()), record in the trail.

A model opts in by subclassing AuditedModel (and AuditedQuerySet for its own
QuerySet); ``audit_label`` names its rows in the trail, a format over its
columns such as ``"{target} ({kind})"``.
"""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q

from audit import recording

_KEYS_PER_QUERY = 500


def _unique_columns(model) -> list[str] | None:
    for constraint in model._meta.total_unique_constraints:
        return [model._meta.get_field(name).attname for name in constraint.fields]
    for field in model._meta.concrete_fields:
        if field.unique and not field.primary_key:
            return [field.attname]
    return None


def _present(model, objs: list, columns: list[str]) -> set:
    found: set = set()
    for start in range(0, len(objs), _KEYS_PER_QUERY):
        match = Q()
        for obj in objs[start:start + _KEYS_PER_QUERY]:
            match |= Q(**{column: getattr(obj, column) for column in columns})
        found.update(model._base_manager.filter(match).values_list("pk", flat=True))
    return found


class AuditedQuerySet(models.QuerySet):
    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            with recording.tracking(self.model, pks, names=kwargs):
                return super().update(**kwargs)

    update.alters_data = True
    update.queryset_only = False

    def delete(self):
        with transaction.atomic(using=self.db):
            pks = list(self.values_list("pk", flat=True))
            with recording.recording_delete(self.model, pks):
                return super().delete()

    delete.alters_data = True
    delete.queryset_only = True

    def bulk_create(self, objs, *args, **kwargs):
        if kwargs.get("update_conflicts"):
            raise NotImplementedError("bulk_create(update_conflicts=True) would change rows unaudited")
        objs = list(objs)
        if not objs:
            return super().bulk_create(objs, *args, **kwargs)
        with transaction.atomic(using=self.db), recording.locked():
            # ignore_conflicts returns no ids: the rows created are the keys absent before.
            columns = _unique_columns(self.model) if kwargs.get("ignore_conflicts") else None
            before = _present(self.model, objs, columns) if columns else set()
            created = super().bulk_create(objs, *args, **kwargs)
            pks = [obj.pk for obj in created if obj.pk is not None]
            if columns and len(pks) < len(created):
                pks = sorted(_present(self.model, objs, columns) - before)
            recording.record_created(self.model, pks)
            return created


class AuditedModel(models.Model):
    objects = AuditedQuerySet.as_manager()
    audit_label = ""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        with transaction.atomic(using=kwargs.get("using")):
            if self._state.adding:
                with recording.locked():
                    super().save(*args, **kwargs)
                    recording.record_created(type(self), [self.pk])
                return
            with recording.tracking(type(self), [self.pk], names=kwargs.get("update_fields")):
                super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        with transaction.atomic(using=kwargs.get("using")):
            with recording.recording_delete(type(self), [self.pk]):
                return super().delete(*args, **kwargs)
