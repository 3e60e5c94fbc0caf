"""Sending one message to one channel: email through Django's email backend,
webhooks as JSON (with a Slack-compatible ``text``) through the project's
bounded HTTP session (urllib3 Retry for quick retries within one attempt)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage
from django.core.validators import URLValidator, validate_email

from schedules.http import build_session

from .models import AlertChannel


def environment_channels() -> list[tuple[str, str]]:
    """(kind, target) of ALERT_EMAILS and ALERT_WEBHOOK_URLS; a bad value stops
    start-up with the variable and the value named."""
    wanted = []
    for name, kind, check in (("ALERT_EMAILS", AlertChannel.Kind.EMAIL, validate_email),
                              ("ALERT_WEBHOOK_URLS", AlertChannel.Kind.WEBHOOK, URLValidator(schemes=["http", "https"]))):
        for value in getattr(settings, name):
            value = value.strip()
            if not value:
                continue
            try:
                check(value)
            except ValidationError:
                raise ImproperlyConfigured(f"{name}: {value!r} is not a valid {'email address' if kind == 'email' else 'http(s) URL'}") from None
            wanted.append((kind, value))
    return wanted


def register_environment_channels() -> None:
    AlertChannel.objects.bulk_create(
        [AlertChannel(kind=kind, target=target, from_environment=True) for kind, target in environment_channels()],
        ignore_conflicts=True,
    )


def send(*, channel: AlertChannel, key: str, title: str, text: str, payload: dict) -> None:
    """Raises on any failure; returns once the channel accepted the message.
    ``key`` identifies the message, so a receiver can drop a repeat."""
    if channel.kind == AlertChannel.Kind.EMAIL:
        EmailMessage(
            subject=title, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[channel.target],
            headers={"X-Alert-Key": key},
        ).send(fail_silently=False)
        return
    # One deadline for the call and its quick retries. Webhook URLs are set by
    # admins or the environment, so private addresses (an internal relay) are allowed.
    session = build_session(token="", retries=2, backoff=0.2, methods=frozenset({"POST"}),
                            deadline=settings.ALERT_WEBHOOK_TIMEOUT * 3)
    with session:
        # stream=True: the answer's body is never read (a huge one costs nothing).
        with session.post(
            channel.target, json={"text": f"*{title}*\n{text}", **payload}, headers={"Idempotency-Key": key},
            timeout=settings.ALERT_WEBHOOK_TIMEOUT, allow_redirects=False, stream=True,
        ) as response:
            response.raise_for_status()
            if response.status_code >= 300:
                raise RuntimeError(f"webhook answered {response.status_code} (redirects are not followed)")
