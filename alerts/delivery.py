"""Delivering alerts: one channel at a time, at most ALERT_RATE_LIMIT messages
per channel per ALERT_RATE_WINDOW_SECONDS (60), and no network call inside a
database transaction. Claim, commit, send, record:

1. Claim, in one short transaction: the channel's row is locked (SELECT ...
   FOR NO KEY UPDATE SKIP LOCKED: a concurrent INSERT of a delivery is not
   held up) while the budget is counted and the due deliveries are picked;
   each is claimed by a conditional UPDATE (``claimed_by`` = this sender's
   token, ``claimed_until`` = a lease) whose row count is checked. Commit.
2. Send each, with no transaction open. Just before, the claim is renewed
   by an UPDATE fenced on ``claimed_by``: a sender whose claim lapsed and
   was taken over sends nothing.
3. Record the outcome in one UPDATE, fenced on ``claimed_by`` too.

A claim outlasts the longest a send can take (its deadline), so while it is
live nobody else sends that delivery; a crashed sender's claims lapse and
another instance sends them, with the same ``webhook-id``. The budget is
the limit less what was sent in the window and what others hold claimed.
When more are due than the budget allows, the overflow is folded into one
summary message (each folded delivery points at it, so nothing is lost). A
failed send is retried with exponential backoff until
ALERT_DELIVERY_GIVE_UP_SECONDS, then marked failed; a final answer (a 4xx
other than 408 and 429) is marked failed at once.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Now

from alerts.channels import describe, send, send_bound_seconds
from alerts.config import alert_config
from alerts.models import AlertChannel, Delivery, DeliveryStatus

logger = logging.getLogger("alerts")

MAX_BACKOFF_SECONDS = 3600.0
SUMMARY_TITLES = 20
# Added to how long the sends of a claim may take: the database round trips
# between them, and a clock that is not the database's.
CLAIM_MARGIN_SECONDS = 30.0


def _db_time_in(seconds: float):
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


def _claimable() -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lte=Now())


def dispatch_all() -> int:
    """Send what is due on every enabled channel; returns how many messages went out."""
    channel_ids = (Delivery.objects.filter(status=DeliveryStatus.PENDING, channel__enabled=True)
                   .order_by().values_list("channel_id", flat=True).distinct())
    return sum(dispatch_channel(channel_id=pk) for pk in list(channel_ids))


def dispatch_channel(*, channel_id: int) -> int:
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    channel, batch = claim_due(channel_id=channel_id, token=token)
    sent = 0
    for position, delivery in enumerate(batch):
        outcome = _attempt(channel=channel, delivery=delivery, token=token)
        if outcome is False:
            # The channel is down: the others wait for its next try, free to be claimed.
            release(ids=[d.pk for d in batch[position + 1:]], token=token)
            break
        sent += bool(outcome)
    return sent


def claim_due(*, channel_id: int, token: str) -> tuple[AlertChannel | None, list[Delivery]]:
    """The channel and the deliveries this sender (``token``) now holds claimed, in sending order."""
    with transaction.atomic():
        channel = (AlertChannel.objects.select_for_update(skip_locked=True, no_key=True)
                   .filter(pk=channel_id, enabled=True).first())
        if channel is None:
            return None, []  # another instance is claiming on this channel right now
        config = alert_config()
        window = timedelta(seconds=config.rate_window_seconds)
        pending = Delivery.objects.filter(channel=channel, status=DeliveryStatus.PENDING)
        due = pending.filter(next_attempt_at__lte=Now()).filter(_claimable())
        in_flight = pending.filter(claimed_until__gt=Now()).count()
        sent_recently = Delivery.objects.filter(channel=channel, sent_at__gte=Now() - window).count()
        budget = config.rate_limit - sent_recently - in_flight
        if budget <= 0 or not due.exists():
            return channel, []
        summaries = list(due.filter(alert__isnull=True).order_by("created_at", "id")[:budget])
        budget -= len(summaries)
        alerts = []
        if budget > 0:
            alerts = list(due.filter(alert__isnull=False).select_related("alert")
                          .order_by("created_at", "id")[:budget + 1])
        if len(alerts) > budget:
            # A storm: the first budget - 1 go out one by one, the rest in one summary.
            alerts = alerts[:budget - 1] + [_fold(channel=channel, due=due,
                                                  after=alerts[budget - 2] if budget > 1 else None)]
        picked = summaries + alerts
        lease = send_bound_seconds(channel=channel) * len(picked) + CLAIM_MARGIN_SECONDS
        claimed = (Delivery.objects.filter(pk__in=[d.pk for d in picked], status=DeliveryStatus.PENDING)
                   .filter(_claimable()).update(claimed_by=token, claimed_until=_db_time_in(lease)))
        if claimed != len(picked):  # only where the database does not lock the channel's row (SQLite)
            mine = set(Delivery.objects.filter(pk__in=[d.pk for d in picked], claimed_by=token)
                       .values_list("pk", flat=True))
            picked = [d for d in picked if d.pk in mine]
    return channel, picked


def release(*, ids: list[int], token: str) -> None:
    if ids:
        Delivery.objects.filter(pk__in=ids, claimed_by=token).update(claimed_by="", claimed_until=None)


def _fold(*, channel: AlertChannel, due: QuerySet, after: Delivery | None) -> Delivery:
    rest = due.filter(alert__isnull=False)
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


def _attempt(*, channel: AlertChannel, delivery: Delivery, token: str) -> bool | None:
    """Send one claimed delivery and record the outcome: True (sent), False
    (failed), None (the claim was taken over: someone else sends it)."""
    bound = send_bound_seconds(channel=channel)
    renewed = (Delivery.objects.filter(pk=delivery.pk, claimed_by=token, status=DeliveryStatus.PENDING)
               .update(claimed_until=_db_time_in(bound + CLAIM_MARGIN_SECONDS)))
    if renewed != 1:
        logger.warning("Alert delivery %s to %s: its claim lapsed and was taken over; not sending it",
                       delivery.pk, channel)
        return None
    title, text, payload = _message(delivery)
    try:
        send(channel=channel, key=f"alert-delivery-{delivery.id}", title=title, text=text, payload=payload)
    except Exception as exc:  # noqa: BLE001 - any failure of the channel is recorded (and retried unless final)
        reason, final = describe(channel=channel, exc=exc)
        config = alert_config()
        wait = min(config.retry_backoff * 2 ** delivery.attempts, MAX_BACKOFF_SECONDS)
        give_up = final or Delivery.objects.filter(
            pk=delivery.pk, created_at__lt=Now() - timedelta(seconds=config.delivery_give_up_seconds)
        ).exists()
        _record(delivery=delivery, token=token, last_error=reason[:2000], next_attempt_at=_db_time_in(wait),
                status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING)
        logger.warning("Alert delivery %s to %s failed (attempt %d): %s", delivery.pk, channel, delivery.attempts + 1,
                       reason)
        return False
    _record(delivery=delivery, token=token, status=DeliveryStatus.SENT, sent_at=Now(), last_error="")
    return True


def _record(*, delivery: Delivery, token: str, **outcome) -> None:
    recorded = Delivery.objects.filter(pk=delivery.pk, claimed_by=token).update(
        attempts=F("attempts") + 1, claimed_by="", claimed_until=None, **outcome)
    if recorded != 1:
        logger.warning("Alert delivery %s: its outcome is not recorded: its claim lapsed and was taken over", delivery.pk)
