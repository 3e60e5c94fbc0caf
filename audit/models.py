"""The audit trail: every change an admin can make (schedules, scan profiles,
alert channels, pauses), who made it and how, with each field's value before
and after (secrets as "changed" only).

Rows name their object by id and label, not by foreign key: the trail of a
deleted object stays. Written by audit.recording from the write paths of the
audited models (save, delete, and the QuerySet's update, delete, bulk_create,
bulk_update), in the same transaction as the change.

Append-only: an entry is never updated, and deleted only by the pruning
service (AUDIT_RETENTION_DAYS, ``cleanupaudit``). Every entry written, one by
one or in bulk, is chained (audit.chain), and ``verifyaudit`` checks the chain.
"""

from django.db import models
from django.db.models.functions import Now

from audit import chain


class ActorKind(models.TextChoices):
    USER = "user", "user (admin form)"
    BULK_ACTION = "bulk_action", "bulk action"
    API_SYNC = "api_sync", "API sync"
    PYTHON = "python", "Python API"
    COMMAND = "command", "management command"
    AUTOMATIC = "automatic", "automatic (scheduler)"


class AuditAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PAUSE = "pause"
    RESUME = "resume"
    PRUNE = "prune"


class AppendOnlyError(Exception):
    """The audit trail is append-only."""


class AuditEntryQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise AppendOnlyError("audit entries are appended, never merged with existing ones")
        created: list = []

        def insert():
            created.extend(super(AuditEntryQuerySet, self).bulk_create(objs, *args, **kwargs))

        chain.append(objs, insert=insert)
        return created

    def update(self, **kwargs):
        raise AppendOnlyError("audit entries are never changed")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("audit entries are never changed")

    def delete(self):
        if not chain.deleting_allowed():
            raise AppendOnlyError("audit entries are deleted only by pruning (AUDIT_RETENTION_DAYS, cleanupaudit)")
        return super().delete()

    delete.alters_data = True
    delete.queryset_only = True


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    model = models.CharField(max_length=32, help_text="schedule, scanprofile, alertchannel or schedulepause")
    object_id = models.CharField(max_length=64, db_index=True)
    object_label = models.CharField(max_length=300)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.CharField(max_length=300, blank=True, help_text="User name, action or source")
    changes = models.JSONField(default=dict, help_text='{"field": [before, after]}')
    created_at = models.DateTimeField(db_default=Now(), db_index=True)
    prev_hash = models.CharField(max_length=64, default="", help_text="The hash of the entry before this one")
    hash = models.CharField(max_length=64, default="", help_text="SHA-256 of this entry's content and prev_hash")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        db_table = "audit_entries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_id", "-created_at"], name="audit_object_created_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_label} by {self.actor_kind} {self.actor}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            raise AppendOnlyError("audit entries are never changed")
        kwargs["force_insert"] = True
        chain.append([self], insert=lambda: super(AuditEntry, self).save(*args, **kwargs))

    def delete(self, *args, **kwargs):
        if not chain.deleting_allowed():
            raise AppendOnlyError("audit entries are deleted only by pruning (AUDIT_RETENTION_DAYS, cleanupaudit)")
        return super().delete(*args, **kwargs)


class AuditChainHead(models.Model):
    """One row: the last entry of the chain, and the lock every writer takes."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=chain.HEAD_ID)
    last_id = models.BigIntegerField(null=True)
    last_hash = models.CharField(max_length=64, default=chain.GENESIS)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "audit_chain_head"

    def __str__(self) -> str:
        return f"audit chain head: #{self.last_id} {self.last_hash[:12]}"
