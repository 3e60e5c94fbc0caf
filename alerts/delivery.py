"""Delivering alerts: one channel at a time, by one instance at a time, at
most ALERT_RATE_LIMIT messages per channel per ALERT_RATE_WINDOW_SECONDS (60).

A channel's row is locked (SELECT ... FOR UPDATE SKIP LOCKED) while its due
deliveries are sent, so two instances never send the same delivery; each is
marked sent in that same transaction. When more are due than the minute's
budget allows, the overflow is folded into one summary message (each folded
delivery points at it, so nothing is lost). A failed send is retried with
exponential backoff until ALERT_DELIVERY_GIVE_UP_SECONDS, then marked failed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Value
from django.db.models.functions import Now

from .channels import send
from .models import AlertChannel, Delivery, DeliveryStatus

logger = logging.getLogger("alerts")

MAX_BACKOFF_SECONDS = 3600.0
SUMMARY_TITLES = 20


def _db_time_in(seconds: float):
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def dispatch_all() -> int:
    """Send what is due on every enabled channel; returns how many messages went out."""
    channel_ids = (Delivery.objects.filter(status=DeliveryStatus.PENDING, channel__enabled=True)
                   .values_list("channel_id", flat=True).distinct())
    return sum(dispatch_channel(channel_id=pk) for pk in list(channel_ids))


def dispatch_channel(*, channel_id: int) -> int:
    with transaction.atomic():
        channel = AlertChannel.objects.select_for_update(skip_locked=True).filter(pk=channel_id).first()
        if channel is None:
            return 0  # another instance is sending on this channel right now
        window = timedelta(seconds=settings.ALERT_RATE_WINDOW_SECONDS)
        due = Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING, next_attempt_at__lte=Now())
        sent_recently = Delivery.objects.filter(channel=channel, sent_at__gte=Now() - window).count()
        budget = settings.ALERT_RATE_LIMIT - sent_recently
        if budget <= 0 or not due.exists():
            return 0
        summaries = list(due.filter(alert__isnull=True).order_by("created_at", "id")[:budget])
        budget -= len(summaries)
        alerts = list(due.filter(alert__isnull=False).select_related("alert").order_by("created_at", "id")[:budget + 1])
        if len(alerts) > budget and budget > 0:
            # A storm: the first budget - 1 go out one by one, the rest in one summary.
            alerts = alerts[:budget - 1] + [_fold(channel=channel, after=alerts[budget - 2] if budget > 1 else None)]
        sent = 0
        for delivery in summaries + alerts:
            if not _attempt(channel=channel, delivery=delivery):
                break  # the channel is down: the others wait for its next try
            sent += 1
        return sent


def _fold(*, channel: AlertChannel, after: Delivery | None) -> Delivery:
    rest = Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING, alert__isnull=False,
                                   next_attempt_at__lte=Now())
    if after is not None:
        rest = rest.exclude(created_at__lt=after.created_at).exclude(created_at=after.created_at, id__lte=after.id)
    rest_ids = list(rest.order_by("created_at", "id").values_list("id", flat=True))
    titles = list(Delivery.objects.filter(id__in=rest_ids[:SUMMARY_TITLES]).order_by("created_at", "id")
                  .values_list("alert__title", flat=True))
    more = len(rest_ids) - len(titles)
    text = "\n".join(f"- {title}" for title in titles) + (f"\n…and {more} more (see the alert list in admin)" if more else "")
    summary = Delivery.objects.create(channel=channel, summary_text=f"{len(rest_ids)} alerts\n{text}")
    for start in range(0, len(rest_ids), 5000):
        Delivery.objects.filter(id__in=rest_ids[start:start + 5000]).update(status=DeliveryStatus.FOLDED, summary=summary)
    logger.warning("Alert storm on %s: %d alerts folded into one summary", channel, len(rest_ids))
    return summary


def _message(delivery: Delivery) -> tuple[str, str, dict]:
    if delivery.alert is None:
        count, _, text = delivery.summary_text.partition("\n")
        title = f"{count} more (alert storm, summarised)"
        return title, text, {"summary": {"delivery_id": delivery.id, "count": int(count.split()[0])}}
    alert = delivery.alert
    return alert.title, alert.text, {"alert": {
        "id": alert.id, "kind": alert.kind, "event": alert.event, "subject": alert.subject,
        "created_at": alert.created_at.isoformat(), "details": alert.details,
    }}


def _attempt(*, channel: AlertChannel, delivery: Delivery) -> bool:
    title, text, payload = _message(delivery)
    try:
        send(channel=channel, key=f"alert-delivery-{delivery.id}", title=title, text=text, payload=payload)
    except Exception as exc:  # noqa: BLE001 - any failure of the channel is retried
        wait = min(settings.ALERT_RETRY_BACKOFF * 2 ** delivery.attempts, MAX_BACKOFF_SECONDS)
        give_up = Delivery.objects.filter(
            pk=delivery.pk, created_at__lt=Now() - timedelta(seconds=settings.ALERT_DELIVERY_GIVE_UP_SECONDS)
        ).exists()
        Delivery.objects.filter(pk=delivery.pk).update(
            attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING, next_attempt_at=_db_time_in(wait),
        )
        logger.warning("Alert delivery %s to %s failed (attempt %d): %s", delivery.pk, channel, delivery.attempts + 1,
                       exc)
        return False
    Delivery.objects.filter(pk=delivery.pk).update(
        attempts=F("attempts") + 1, status=DeliveryStatus.SENT, sent_at=Now(), last_error="")
    return True
