"""The schedule: a domain's scan times (frequency, time config, zone, spread),
its scan settings, and the next run derived from them."""

import uuid
from datetime import datetime

from apscheduler.triggers.base import BaseTrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from history.models import schedule_job_id
from scanner_project.redaction import shown
from schedules.json_limits import json_problem
from schedules.models.changes import ChangeRecordingModel, ChangeRecordingQuerySet
from schedules.models.profiles import ScanProfile, validate_scan_settings
from schedules.models.shards import ShardField
from schedules.timing.spread import MAX_SPREAD_MINUTES, spread_offset
from schedules.timing.triggers import (
    FREQUENCIES,
    TimeConfigError,
    build_trigger,
    check_interval_minimum,
    check_once_not_past,
    describe,
    next_fire_times,
    trigger_of,
)
from schedules.validators import normalize_domain, validate_domain, validate_domain_config_id


def _default_timezone() -> str:
    return settings.TIME_ZONE


class ScheduleQuerySet(ChangeRecordingQuerySet):
    def set_enabled(self, enabled: bool, *, now: datetime | None = None) -> list[uuid.UUID]:
        """Enable or disable these schedules with next_run recomputed, so a
        bulk change never leaves a stale next_run (which start-up would record
        as a false "missed"). Returns the ids changed."""
        now = now or timezone.now()
        schedules = list(self)
        for schedule in schedules:
            schedule.enabled = enabled
            schedule.next_run = schedule.compute_next_run(now=now)
            schedule.updated_at = now
        Schedule.objects.bulk_update(schedules, ["enabled", "next_run", "updated_at"], batch_size=500)
        return [schedule.schedule_id for schedule in schedules]


class Schedule(ChangeRecordingModel):
    class Frequency(models.TextChoices):
        HOURLY = "hourly"
        DAILY = "daily"
        WEEKLY = "weekly"
        MONTHLY = "monthly"
        CRON = "cron"
        INTERVAL = "interval"
        ONCE = "once"

    schedule_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Which firing instance loads the schedule (models.shards; runtime/shard_leases.py).
    shard = ShardField(db_default=0)
    domain_config_id = models.CharField(max_length=255, unique=True, validators=[validate_domain_config_id])
    domain = models.CharField(max_length=255, validators=[validate_domain], db_index=True)
    profile = models.ForeignKey(
        ScanProfile, null=True, blank=True, on_delete=models.SET_NULL, db_column="profile_id", related_name="schedules"
    )
    frequency = models.CharField(max_length=50, choices=Frequency.choices)
    time_config = models.JSONField(
        default=dict,
        help_text='daily: {"hour": 2, "minute": 0}; weekly: {"day": "monday", "hour": 2, "minute": 0}; '
        'monthly: {"day": 1 or "last", ...}; hourly: {"minute": 5}; cron: {"expression": "*/15 * * * *"}; '
        'interval: {"minutes": 30}; once: {"at": "2026-12-01T02:00:00"}',
    )
    timezone = models.CharField(max_length=64, default=_default_timezone, help_text="IANA zone, e.g. Europe/Berlin")
    scan_settings = models.JSONField(
        default=dict, blank=True, help_text="The domain's scan settings as the upstream API sends them"
    )
    spread_minutes = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Run each slot at a stable offset within this many minutes after it (spreads a herd); "
        "empty: DEFAULT_SPREAD_SECONDS",
    )
    enabled = models.BooleanField(default=True, db_index=True)
    next_run = models.DateTimeField(null=True, blank=True)
    last_run = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=50, blank=True, db_index=True)
    edited_manually = models.BooleanField(
        default=False, help_text="Edited by hand; the API import leaves it alone unless forced"
    )
    from_api = models.BooleanField(
        default=False, help_text="Written by the API import; only such schedules can be missing from its answer"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        db_table = "schedules"
        ordering = ["domain", "domain_config_id"]

    def __str__(self) -> str:
        return f"{self.domain} ({self.domain_config_id})"

    def clean(self):
        try:
            self.domain = normalize_domain(self.domain)  # stored as validated, not as given
        except ValidationError:
            pass  # already reported by the field's validator
        for name in ("time_config", "scan_settings"):
            problem = json_problem(getattr(self, name), name=name)
            if problem:
                raise ValidationError({name: problem})
        if self.frequency not in FREQUENCIES:
            raise ValidationError({"frequency": f"frequency: {shown(self.frequency)} is not one of {', '.join(FREQUENCIES)}"})
        try:
            build_trigger(self.frequency, self.time_config, self.timezone)
            check_interval_minimum(self.frequency, self.time_config, minimum=settings.MIN_INTERVAL_SECONDS)
            if self._when_is_new():
                check_once_not_past(self.frequency, self.time_config, self.timezone, now=timezone.now())
        except TimeConfigError as exc:
            field = exc.field.split(".")[0]
            raise ValidationError({field: str(exc)}) from None
        if isinstance(self.spread_minutes, int) and not 0 <= self.spread_minutes <= MAX_SPREAD_MINUTES:
            raise ValidationError({"spread_minutes": f"spread_minutes: {self.spread_minutes!r} is not between 0 and "
                                                     f"{MAX_SPREAD_MINUTES}"})
        if not isinstance(self.scan_settings, dict):
            raise ValidationError({"scan_settings": f"scan_settings: {shown(self.scan_settings)} is not an object"})
        try:
            validate_scan_settings(self.scan_settings)
        except ValidationError as exc:
            raise ValidationError({"scan_settings": f"scan_settings.{exc.messages[0]}"}) from None

    def _when_is_new(self) -> bool:
        """True unless the stored row already has this frequency, time_config and
        timezone: a ``once`` that has passed may stay as it is (it never runs
        again), but a new or changed one must be in the future."""
        if self._state.adding or self.frequency != self.Frequency.ONCE:
            return True
        stored = Schedule.objects.filter(pk=self.pk).values_list("frequency", "time_config", "timezone").first()
        return stored != (self.frequency, self.time_config, self.timezone)

    def unique_error_message(self, model_class, unique_check):
        # Django's default ("Schedule with this Domain config id already
        # exists.") names neither the field as stored nor the value.
        if tuple(unique_check) == ("domain_config_id",):
            return ValidationError(
                "domain_config_id: %(value)r is already used by another schedule",
                code="unique", params={"value": self.domain_config_id},
            )
        return super().unique_error_message(model_class, unique_check)

    def save(self, *args, **kwargs):
        # next_run is derived; keep it true whenever the whole row is written.
        if kwargs.get("update_fields") is None:
            self.next_run = self.compute_next_run()
        super().save(*args, **kwargs)

    @property
    def trigger(self) -> BaseTrigger:
        """The slots as they really run: the time config, moved by the spread offset."""
        return trigger_of(frequency=self.frequency, time_config=self.time_config, timezone=self.timezone,
                          offset_seconds=self.spread_offset)

    @property
    def spread_offset(self) -> int:
        return spread_offset(self.schedule_id, self.spread_minutes)

    def upcoming_runs(self, *, count: int = 5, now: datetime | None = None) -> list[datetime]:
        return next_fire_times(self.trigger, count=count, now=now or timezone.now())

    def compute_next_run(self, *, now: datetime | None = None) -> datetime | None:
        if not self.enabled:
            return None
        try:
            return self.next_run_after(self.trigger, now=now or timezone.now())
        except TimeConfigError:
            return None

    @staticmethod
    def next_run_after(trigger: BaseTrigger, *, now: datetime) -> datetime | None:
        """The one definition of next_run: the first slot strictly after
        ``now``. Every writer of the column takes its value from here: row
        writes (save, set_enabled, the API sync) through compute_next_run, the
        runtime's bookkeeping and start-up with the trigger of their snapshot."""
        upcoming = next_fire_times(trigger, count=1, now=now)
        return upcoming[0] if upcoming else None

    @property
    def description(self) -> str:
        return describe(self.frequency, self.time_config, self.timezone)

    @property
    def job_id(self) -> str:
        return schedule_job_id(self.schedule_id)

    @staticmethod
    def merged_scan_settings(profile_settings: dict, own_settings: dict | None) -> dict:
        """Profile settings overlaid by the schedule's own: what the runner gets
        (jobs.spec_from_row builds every snapshot with it)."""
        return {**profile_settings, **(own_settings or {})}
