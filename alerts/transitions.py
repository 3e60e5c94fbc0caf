"""Claiming a transition of a watched condition: exactly one alert per change,
however many instances see it at the same moment."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from alerts.models import Alert, AlertChannel, AlertEvent, AlertState, Delivery

logger = logging.getLogger("alerts")


def ensure_states(*, kind: str, subjects: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: the state rows the claims update."""
    AlertState.objects.bulk_create([AlertState(kind=kind, subject=s) for s in subjects], ignore_conflicts=True)


def claim(*, kind: str, subject: str, firing: bool, title: str, text: str, details: dict | None = None,
          instance_id: str = "") -> Alert | None:
    """Flip the subject's state to ``firing`` and write its alert and
    deliveries, or return None when the state already had that value (another
    instance claimed this transition first, or nothing changed).

    The UPDATE's WHERE names the old value: under concurrent claims the second
    one waits for the first's row lock, re-reads the row, and matches nothing.
    """
    if firing:
        ensure_states(kind=kind, subjects=[subject])
    with transaction.atomic():
        won = AlertState.objects.filter(kind=kind, subject=subject, firing=not firing).update(
            firing=firing, transitions=F("transitions") + 1, changed_at=Now()
        )
        if won != 1:
            return None
        number = AlertState.objects.values_list("transitions", flat=True).get(kind=kind, subject=subject)
        alert = Alert.objects.create(
            kind=kind, subject=subject, transition=number,
            event=AlertEvent.FIRING if firing else AlertEvent.RESOLVED,
            title=title[:300], text=text, details=details or {}, instance_id=instance_id,
        )
        channels = AlertChannel.objects.filter(enabled=True)
        Delivery.objects.bulk_create([Delivery(alert=alert, channel=channel) for channel in channels])
    logger.warning("Alert %s: %s", alert.event, alert.title)
    return alert


def firing_subjects(*, kind: str, subjects: list[str] | None = None) -> set[str]:
    rows = AlertState.objects.filter(kind=kind, firing=True)
    if subjects is not None:
        rows = rows.filter(subject__in=subjects)
    return set(rows.values_list("subject", flat=True))
