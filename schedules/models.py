import contextlib
import uuid
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Now
from django.utils import timezone

from audit import recording as audit
from history.models import schedule_job_id

from scanner_project.redaction import shown

from schedules.json_limits import json_problem
from schedules.timing.spread import MAX_SPREAD_MINUTES, spread_offset
from schedules.timing.triggers import (FREQUENCIES, TimeConfigError, build_trigger, check_interval_minimum, check_once_not_past, describe, trigger_of,
                       next_fire_times)
from schedules.validators import normalize_domain, validate_domain, validate_domain_config_id


def _default_timezone() -> str:
    return settings.TIME_ZONE


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
    def record(cls, *, schedule_ids=(), profile_ids=()) -> None:
        rows = [cls(schedule_id=i) for i in schedule_ids] + [cls(profile_id=i) for i in profile_ids]
        if rows:
            cls.objects.bulk_create(rows, batch_size=5000)


def _record_changes(model, pks, *, with_schedules_of_profiles: bool = False) -> None:
    pks = list(pks)
    if model is ScanProfile:
        ScheduleChange.record(profile_ids=pks)
        if with_schedules_of_profiles:
            # Deleting a profile sets its schedules' profile to NULL without
            # going through update(): record them here.
            ScheduleChange.record(
                schedule_ids=Schedule.objects.filter(profile__in=pks).values_list("pk", flat=True))
    else:
        ScheduleChange.record(schedule_ids=pks)


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
            _record_changes(self.model, pks, with_schedules_of_profiles=True)
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


@contextlib.contextmanager
def _audited_delete(model, pks: list):
    with contextlib.ExitStack() as stack:
        stack.enter_context(audit.recording_delete(model, pks))
        if model is ScanProfile:
            # Its schedules lose their profile (SET NULL, not through update()).
            users = list(Schedule.objects.filter(profile__in=pks).values_list("pk", flat=True))
            stack.enter_context(audit.tracking(Schedule, users, names=["profile"]))
        yield


class ChangeRecordingModel(models.Model):
    """save() and delete() of a single row record it in ScheduleChange and the audit trail."""

    objects = ChangeRecordingQuerySet.as_manager()

    class Meta:
        abstract = True

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
            _record_changes(type(self), [self.pk], with_schedules_of_profiles=True)
            with _audited_delete(type(self), [self.pk]):
                return super().delete(*args, **kwargs)


class ScanProfile(ChangeRecordingModel):
    """Scan settings shared by many schedules. A schedule's own settings win."""

    profile_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    max_pages = models.PositiveIntegerField(default=50)
    scan_depth = models.PositiveIntegerField(default=5)
    max_retries = models.PositiveIntegerField(default=3)
    allow_deep_scan = models.BooleanField(default=False)
    custom_pages = models.JSONField(default=list, blank=True, help_text='Paths such as ["/privacy"]')
    accept_selector = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        db_table = "scan_profiles"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        problem = json_problem(self.custom_pages, name="custom_pages")
        if problem:
            raise ValidationError({"custom_pages": problem})
        if not isinstance(self.custom_pages, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in self.custom_pages
        ):
            raise ValidationError(
                {"custom_pages": f"custom_pages: {shown(self.custom_pages)} must be a list of paths starting with /"}
            )

    # The columns scan_settings_of takes, in order (a join from schedules
    # reads them as profile__<name>).
    SETTING_COLUMNS = ("max_pages", "scan_depth", "max_retries", "allow_deep_scan", "custom_pages", "accept_selector")

    def as_scan_settings(self) -> dict:
        """This profile in the upstream API's key names (what runners receive)."""
        return self.scan_settings_of(*(getattr(self, name) for name in self.SETTING_COLUMNS))

    @staticmethod
    def scan_settings_of(max_pages, scan_depth, max_retries, allow_deep_scan, custom_pages, accept_selector) -> dict:
        """The profile's columns as scan settings; {} when there is no profile
        (a join found none). The one mapping, for model objects and raw rows."""
        if max_pages is None:
            return {}
        return {
            "maxPages": max_pages,
            "scanDepth": scan_depth,
            "maxRetries": max_retries,
            "allow_deep_scan": allow_deep_scan,
            "customPages": list(custom_pages or []),
            "accept_selector": accept_selector,
        }


# Scan settings that ScanProfile has columns for: checked with its field rules.
_PROFILE_FIELDS = {
    "description": "description",
    "allow_deep_scan": "allow_deep_scan",
    "maxPages": "max_pages",
    "scanDepth": "scan_depth",
    "maxRetries": "max_retries",
    "customPages": "custom_pages",
    "accept_selector": "accept_selector",
}


def validate_scan_settings(scan_settings: dict) -> None:
    """Known settings must be what ScanProfile's fields would store, uncoerced.

    Raises ValidationError("maxPages: 'fifty': ..."); unknown keys pass through
    (the upstream API may add settings the runner understands).
    """
    profile = ScanProfile()
    for key, attname in _PROFILE_FIELDS.items():
        if key not in scan_settings:
            continue
        value = scan_settings[key]
        model_field = ScanProfile._meta.get_field(attname)
        try:
            cleaned = model_field.clean(value, profile)
        except ValidationError as exc:
            raise ValidationError(f"{key}: {shown(value)}: {' '.join(exc.messages)}") from None
        except (OverflowError, ValueError, TypeError):  # 1e309 reads as inf, which int() refuses
            cleaned = None
        # "50" would clean to 50 and be stored as text; the runner expects a number.
        if type(cleaned) is not type(value) or cleaned != value:
            raise ValidationError(f"{key}: {shown(value)} is not a {model_field.get_internal_type()} value")
        setattr(profile, attname, value)
    if "customPages" in scan_settings:
        try:
            profile.clean()
        except ValidationError:
            raise ValidationError(
                f"customPages: {shown(scan_settings['customPages'])} must be a list of paths starting with /"
            ) from None


SCAN_SETTING_KEYS = (
    "description",
    "allow_deep_scan",
    "maxPages",
    "scanDepth",
    "maxRetries",
    "customPages",
    "accept_selector",
)


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
