"""Pausing a schedule with a note: unlike disabling, its slots still come and
are recorded ``skipped`` with the pause's reason, so its history has no
silent gaps; it resumes by itself at ``resume_at``. Every pause row written
is in the audit trail (audit.tracked), besides the pause and resume entries
on the schedule itself (pauses.services)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from audit.tracked import AuditedModel, AuditedQuerySet


class SchedulePauseQuerySet(AuditedQuerySet):
    def open(self) -> "SchedulePauseQuerySet":
        return self.filter(resumed_at__isnull=True)


class SchedulePause(AuditedModel):
    audit_label = "pause of schedule {schedule_id}"

    id = models.BigAutoField(primary_key=True)
    schedule = models.ForeignKey("schedules.Schedule", on_delete=models.CASCADE, related_name="pauses")
    reason = models.TextField()
    paused_by = models.CharField(max_length=150, help_text="A user name, or api / python / command")
    paused_at = models.DateTimeField(db_default=Now())
    resume_at = models.DateTimeField(null=True, blank=True, help_text="Resumes by itself then; empty: until resumed")
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.CharField(max_length=150, blank=True, help_text="A user name, or 'automatic' at resume_at")

    objects = SchedulePauseQuerySet.as_manager()

    class Meta:
        db_table = "schedule_pauses"
        ordering = ["-paused_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["schedule"], condition=Q(resumed_at__isnull=True),
                                    name="schedule_pauses_one_open"),
        ]

    def __str__(self) -> str:
        return f"paused by {self.paused_by}: {self.reason}"
