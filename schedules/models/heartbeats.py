"""The heartbeat records of running scheduler instances and the one rule for
which of them are live."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class SchedulerInstanceQuerySet(models.QuerySet):
    def live(self, *, stale_after: float | None = None) -> "SchedulerInstanceQuerySet":
        """The one liveness rule, used by the runtime, admin, dashboard and
        /healthz: not stopped, and seen within INSTANCE_STALE_SECONDS by the
        database's clock (heartbeats are written with it too, so a skewed web
        or scheduler clock cannot make an instance look dead or alive)."""
        return self.filter(stopped_at__isnull=True, last_seen__gte=self._cutoff(stale_after))

    def with_liveness(self) -> "SchedulerInstanceQuerySet":
        """Every instance, annotated ``is_live`` by the rule of ``live()``."""
        return self.annotate(is_live=models.Case(
            models.When(stopped_at__isnull=True, last_seen__gte=self._cutoff(None), then=models.Value(True)),
            default=models.Value(False), output_field=models.BooleanField(),
        ))

    @staticmethod
    def _cutoff(stale_after: float | None):
        seconds = settings.INSTANCE_STALE_SECONDS if stale_after is None else stale_after
        return Now() - timedelta(seconds=seconds)


class SchedulerInstance(models.Model):
    """The heartbeat record of one running ``runscheduler`` process."""

    instance_id = models.CharField(max_length=255, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    jobs_loaded = models.PositiveIntegerField(default=0)
    running_now = models.PositiveIntegerField(default=0)
    status = models.JSONField(default=dict, blank=True)

    objects = SchedulerInstanceQuerySet.as_manager()

    class Meta:
        db_table = "scheduler_instances"
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.instance_id
