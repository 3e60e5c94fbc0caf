"""Sending one message to one channel: email through Django's email backend,
webhooks as signed JSON (with a Slack-compatible ``text``) through the
project's bounded, public-only HTTP session (scanner_project.outbound.http; urllib3 Retry
for quick retries within one attempt). See alerts.webhooks for the rules."""

from __future__ import annotations

import json
import time

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email

from alerts.config import alert_config
from alerts.models import AlertChannel, ChannelSecret
from alerts.webhooks import (
    InvalidTarget,
    WebhookAnswered,
    allowed_networks,
    describe_failure,
    new_secret,
    signature_headers,
    target_problem,
)
from scanner_project.outbound.http import build_session
from scanner_project.redaction import redact_userinfo, shorten, shown

# Quick retries of one attempt (urllib3), within one deadline.
QUICK_RETRIES = 2


def environment_channels() -> list[tuple[str, str]]:
    """(kind, target) of ALERT_EMAILS and ALERT_WEBHOOK_URLS; a bad value stops
    start-up with the variable and the value named (user info redacted)."""
    wanted = []
    config = alert_config()
    for name, kind, values in (("ALERT_EMAILS", AlertChannel.Kind.EMAIL, config.emails),
                               ("ALERT_WEBHOOK_URLS", AlertChannel.Kind.WEBHOOK, config.webhook_urls)):
        for value in values:
            value = value.strip()
            if not value:
                continue
            if kind == AlertChannel.Kind.WEBHOOK:
                problem = target_problem(value)
                if problem:
                    raise ImproperlyConfigured(f"{name}: {shown(value)} is not a valid http(s) URL ({problem})")
            else:
                try:
                    validate_email(value)
                except ValidationError:
                    raise ImproperlyConfigured(f"{name}: {shown(value)} is not a valid email address") from None
            wanted.append((kind, value))
    return wanted


def register_environment_channels() -> None:
    AlertChannel.objects.bulk_create(
        [AlertChannel(kind=kind, target=target, from_environment=True) for kind, target in environment_channels()],
        ignore_conflicts=True,
    )


def signing_secret(*, channel: AlertChannel) -> str:
    """The channel's secret; made at its first use when it was created outside
    admin (ALERT_WEBHOOK_URLS, the Python API): rotate it in admin to see it."""
    return ChannelSecret.objects.get_or_create(channel=channel)[0].secret


def rotate_secret(*, channel: AlertChannel) -> str:
    """A new secret for ``channel``, returned to be shown once."""
    secret = new_secret()
    ChannelSecret.objects.update_or_create(channel=channel, defaults={"secret": secret})
    return secret


def send_bound_seconds(*, channel: AlertChannel) -> float:
    """How long one send may take: a webhook's whole deadline, or the SMTP
    exchange's few timeouts. A claim lasts longer than this."""
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        return alert_config().webhook_timeout * (QUICK_RETRIES + 1)
    return alert_config().email_timeout * 6


def describe(*, channel: AlertChannel, exc: BaseException) -> tuple[str, bool]:
    """(what last_error and the log say, whether the failure is final)."""
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        return describe_failure(exc)
    # The SMTP server is the operator's (EMAIL_HOST), not a target staff choose.
    return shorten(redact_userinfo(f"{type(exc).__name__}: {exc}"), 500), False


def send(*, channel: AlertChannel, key: str, title: str, text: str, payload: dict) -> None:
    """Raises on any failure; returns once the channel accepted the message.
    ``key`` identifies the message, so a receiver can drop a repeat. Never
    call it inside a transaction: it waits on the network."""
    if channel.kind == AlertChannel.Kind.EMAIL:
        EmailMessage(
            subject=title, body=text, from_email=alert_config().from_email, to=[channel.target],
            headers={"X-Alert-Key": key},
        ).send(fail_silently=False)
        return
    if target_problem(channel.target):  # a row written around full_clean
        raise InvalidTarget("not a valid webhook URL (http or https, a host, no user info)")
    body = json.dumps({"text": f"*{title}*\n{text}", **payload}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json", "Idempotency-Key": key,
        **signature_headers(secret=signing_secret(channel=channel), message_id=key, timestamp=int(time.time()),
                            body=body),
    }
    # One deadline for the call and its quick retries; every address the host
    # resolves to must be public or in ALERT_ALLOWED_NETWORKS.
    session = build_session(token="", retries=QUICK_RETRIES, backoff=0.2, methods=frozenset({"POST"}),
                            deadline=send_bound_seconds(channel=channel), public_only=True,
                            allowed_networks=allowed_networks())
    for adapter in session.adapters.values():
        # Quick retries for a 5xx answer only. A connection error waits for the
        # backoff: urllib3 would log the URL's path (a secret, for Slack) at
        # WARNING before retrying, and a POST broken mid-answer may have arrived.
        adapter.max_retries = adapter.max_retries.new(connect=0, read=0, other=0)
    with session:
        # stream=True: the answer's body is never read (a huge one costs nothing).
        with session.post(channel.target, data=body, headers=headers, timeout=alert_config().webhook_timeout,
                          allow_redirects=False, stream=True) as response:
            if not 200 <= response.status_code < 300:
                raise WebhookAnswered(response.status_code)
