"""Alerts: transitions of watched conditions, and their delivery to channels.

An ``AlertState`` row per watched subject holds whether it is firing. A
transition is claimed with a conditional UPDATE (``firing`` flips only where
it still has the old value), so of any number of instances evaluating the same
condition exactly one writes the ``Alert``; the unique (kind, subject,
transition) constraint backs that up. Each alert gets one ``Delivery`` per
channel, sent, retried and rate-limited by alerts.delivery, which claims a
delivery (``claimed_by`` / ``claimed_until``) before it sends it with no
transaction open. A webhook channel signs with its ``ChannelSecret``, kept in
a table of its own so that no record of channel changes ever holds it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.db.models.functions import Now

from alerts.webhooks import display_target, new_secret, validate_webhook_target
from audit.tracked import AuditedModel


class AlertKind(models.TextChoices):
    SCHEDULE_FAILING = "schedule_failing", "Schedule failing"
    NO_LIVE_INSTANCE = "no_live_instance", "No live scheduler instance"
    SYNC_FAILING = "sync_failing", "API sync failing"
    QUEUE_BEHIND = "queue_behind", "Queued slot waiting too long"
    NEW_COOKIE_BEFORE_CONSENT = "new_cookie_before_consent", "New cookie set before consent"


class AlertEvent(models.TextChoices):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertState(models.Model):
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=255)
    firing = models.BooleanField(default=False)
    # Consecutive failures, for conditions counted outside job history (API sync).
    streak = models.PositiveIntegerField(default=0)
    transitions = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "alert_states"
        constraints = [models.UniqueConstraint(fields=["kind", "subject"], name="alert_states_one_per_subject")]
        indexes = [models.Index(fields=["kind", "firing"], name="alert_states_kind_firing_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {'firing' if self.firing else 'ok'}"


class Alert(models.Model):
    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(max_length=255)
    transition = models.PositiveIntegerField()
    event = models.CharField(max_length=16, choices=AlertEvent.choices)
    title = models.CharField(max_length=300)
    text = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    instance_id = models.CharField(max_length=255, blank=True, help_text="The instance that claimed the transition")
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "alerts"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject", "transition"], name="alerts_one_per_transition")
        ]

    def __str__(self) -> str:
        return self.title


class AlertChannel(AuditedModel):
    """Every change (admin, bulk action, QuerySet, environment) is in the audit trail (audit.tracked)."""

    audit_label = "{target} ({kind})"

    class Kind(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(
        max_length=500,
        help_text="An email address, or a webhook URL (http or https, no user info; signed JSON is POSTed to it). "
                  "Private addresses are refused unless ALERT_ALLOWED_NETWORKS allows them.",
    )
    enabled = models.BooleanField(default=True)
    from_environment = models.BooleanField(
        default=False, editable=False, help_text="Set from ALERT_EMAILS / ALERT_WEBHOOK_URLS"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "alert_channels"
        ordering = ["kind", "target"]
        constraints = [models.UniqueConstraint(fields=["kind", "target"], name="alert_channels_unique_target")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.display_target}"

    @property
    def display_target(self) -> str:
        """How messages, logs and lists name the target: a webhook as
        scheme://host[:port] only (its path or query may be a secret)."""
        return display_target(self.target) if self.kind == self.Kind.WEBHOOK else self.target

    def clean(self) -> None:
        self.target = (self.target or "").strip()
        try:
            if self.kind == self.Kind.WEBHOOK:
                validate_webhook_target(self.target)
            elif self.kind == self.Kind.EMAIL:
                validate_email(self.target)
        except ValidationError as exc:
            raise ValidationError({"target": exc.messages}) from None


class ChannelSecret(models.Model):
    """The signing secret of a webhook channel (``whsec_`` + base64 of 32
    random bytes). Admin shows it once, when it is made, and never again."""

    channel = models.OneToOneField(AlertChannel, primary_key=True, on_delete=models.CASCADE, related_name="signing")
    secret = models.CharField(max_length=100, default=new_secret)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "alert_channel_secrets"

    def __str__(self) -> str:
        return f"signing secret of {self.channel}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting to be sent (or retried at next_attempt_at)
    SENT = "sent"
    FOLDED = "folded"  # part of a storm: told in a summary delivery instead
    FAILED = "failed"  # gave up after ALERT_DELIVERY_GIVE_UP_SECONDS


class Delivery(models.Model):
    """One alert (or one storm summary, with no alert) to one channel."""

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    summary = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="folded",
        help_text="The summary this delivery was folded into",
    )
    summary_text = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    # The claim of the sender now sending it (alerts.delivery): nobody else
    # sends it until claimed_until, by when a crashed sender's claim lapses.
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "alert_deliveries"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel"], condition=models.Q(alert__isnull=False), name="alert_deliveries_once"
            )
        ]
        indexes = [
            models.Index(fields=["channel", "next_attempt_at"], condition=models.Q(status="pending"),
                         name="alert_deliveries_due_idx"),
            models.Index(fields=["channel", "sent_at"], name="alert_deliveries_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.alert or 'summary'} -> {self.channel}"


class ScheduleAlertRule(models.Model):
    """A schedule's own failure threshold (default ALERT_AFTER_FAILURES)."""

    schedule = models.OneToOneField(
        "schedules.Schedule", primary_key=True, on_delete=models.CASCADE, related_name="alert_rule"
    )
    after_failures = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Alert when this many runs in a row failed (1 to 100)",
    )

    class Meta:
        db_table = "schedule_alert_rules"

    def __str__(self) -> str:
        return f"alert after {self.after_failures} failures"

