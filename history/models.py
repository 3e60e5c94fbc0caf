import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q


class ExecutionStatus(models.TextChoices):
    QUEUED = "queued"  # fired (or requested by "Run now"), waiting for a free worker on any instance
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # the previous run of the schedule was still going
    MISSED = "missed"  # no instance could run the slot within its grace time
    ABANDONED = "abandoned"  # its instance died mid-run (heartbeat stopped)
    INTERRUPTED = "interrupted"  # its instance shut down before the scan ended


FINISHED_STATUSES = (
    ExecutionStatus.SUCCESS,
    ExecutionStatus.FAILED,
    ExecutionStatus.SKIPPED,
    ExecutionStatus.MISSED,
    ExecutionStatus.ABANDONED,
    ExecutionStatus.INTERRUPTED,
)


def schedule_job_id(schedule_id: uuid.UUID | str) -> str:
    """The APScheduler job id of a schedule, also stored on each of its runs (job_id)."""
    return f"schedule:{schedule_id}"


class ExecutionTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class JobExecution(models.Model):
    """One run (or one slot that could not run) of a schedule.

    The row for a scheduled slot is also its claim: the partial unique
    constraint on (schedule, scheduled_for) lets exactly one instance insert it.
    """

    execution_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # History outlives its schedule: the domain and config id are copied here.
    schedule = models.ForeignKey(
        "schedules.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_column="schedule_id",
        related_name="executions",
    )
    job_id = models.CharField(max_length=255)
    domain = models.CharField(max_length=255)
    domain_config_id = models.CharField(max_length=255)
    status = models.CharField(max_length=50, choices=ExecutionStatus.choices)
    trigger = models.CharField(max_length=20, choices=ExecutionTrigger.choices, default=ExecutionTrigger.SCHEDULED)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    scan_id = models.CharField(max_length=255, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    instance_id = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker took this row. Above 1, an instance died while it
    # held the row and the row went back to the queue (history.queue.rescue_orphaned).
    deliveries = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "job_executions"
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"],
                condition=Q(trigger="scheduled"),
                name="job_executions_one_per_slot",
            ),
        ]
        indexes = [
            models.Index(fields=["-started_at"], name="job_exec_started_idx"),
            # Covering: statistics and chart series over a time window become
            # index-only scans (migration 0002; see docs/benchmarks/history.md).
            models.Index(
                fields=["started_at"], include=["status", "duration_seconds"], name="job_exec_started_cover_idx"
            ),
            models.Index(fields=["schedule", "-started_at"], name="job_exec_schedule_started_idx"),
            models.Index(fields=["status", "-started_at"], name="job_exec_status_started_idx"),
            models.Index(fields=["domain", "-started_at"], name="job_exec_domain_started_idx"),
            models.Index(
                fields=["heartbeat_at"], condition=Q(status="running"), name="job_exec_running_heartbeat_idx"
            ),
            # The queue, in the order workers take it (history.queue.take_queued).
            models.Index(fields=["trigger", "started_at"], condition=Q(status="queued"), name="job_exec_queue_idx"),
        ]

    @property
    def start_delay(self) -> timedelta | None:
        """From the slot (or the "Run now" request) to a worker starting it;
        None while it waits in the queue or for a slot that never started."""
        if self.status in (ExecutionStatus.QUEUED, ExecutionStatus.MISSED) or self.started_at is None:
            return None
        since = self.scheduled_for or self.created_at
        return max(self.started_at - since, timedelta(0)) if since else None

    def __str__(self) -> str:
        return f"{self.domain} {self.status} {self.started_at:%Y-%m-%d %H:%M:%S}"
