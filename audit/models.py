"""The audit trail: every change to a schedule or scan profile, who made it
and how, with each field's value before and after.

Rows name their object by id and label, not by foreign key: the trail of a
deleted schedule stays. Written by audit.recording from the write paths of
schedules.models (save, delete, and the QuerySet's update, delete,
bulk_create, bulk_update), in the same transaction as the change.
"""

from django.db import models
from django.db.models.functions import Now


class ActorKind(models.TextChoices):
    USER = "user", "user (admin form)"
    BULK_ACTION = "bulk_action", "bulk action"
    API_SYNC = "api_sync", "API sync"
    PYTHON = "python", "Python API"
    COMMAND = "command", "management command"


class AuditAction(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PAUSE = "pause"
    RESUME = "resume"


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    model = models.CharField(max_length=32, help_text="schedule or scanprofile")
    object_id = models.UUIDField(db_index=True)
    object_label = models.CharField(max_length=300)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.CharField(max_length=300, blank=True, help_text="User name, action or source")
    changes = models.JSONField(default=dict, help_text='{"field": [before, after]}')
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "audit_entries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_id", "-created_at"], name="audit_object_created_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_label} by {self.actor_kind} {self.actor}".strip()
