"""A missed slot to run again. The missed row's id is the primary key: of any
number of requests (two admins, the command twice) exactly one INSERT
succeeds, so each missed slot is re-run at most once. The missed row itself
is left as it was: its outcome stays in the history.

Re-runs of one schedule wait their turn (``waiting``) and are queued one at
a time (``queued``), so they never overlap each other or a scheduled run and
get skipped for it (see services.promote_waiting)."""

from django.db import models
from django.db.models.functions import Now


class SlotRerun(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"
        QUEUED = "queued"

    missed_execution_id = models.UUIDField(primary_key=True)
    schedule_id = models.UUIDField(db_index=True)
    scheduled_for = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    rerun_execution_id = models.UUIDField(null=True, blank=True, help_text="The queued manual run")
    requested_by = models.CharField(max_length=150)
    request_id = models.UUIDField(help_text="The request that took this slot (tells it which rows it inserted)")
    requested_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "slot_reruns"
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["schedule_id", "scheduled_for"], condition=models.Q(status="waiting"),
                                name="slot_reruns_waiting_idx")]

    def __str__(self) -> str:
        return f"re-run of slot {self.scheduled_for.isoformat()} of {self.schedule_id}"
