"""Signed webhooks (Standard Webhooks): each delivery carries webhook-id,
webhook-timestamp and webhook-signature, checked here by a verifier written
from the format alone (hmac and base64 of the standard library, not the
sender's code); the secret is shown once in admin; a 4xx other than 408 and
429 is final."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import pytest
from django.db.models.functions import Now

from alerts import checks
from alerts.delivery import dispatch_all
from alerts.models import AlertChannel, ChannelSecret, Delivery
from tests.test_alerts import hook  # noqa: F401 - a fixture: the webhook channel on loopback

pytestmark = pytest.mark.django_db


def verified(secret: str, headers: dict, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does: recompute the signature over id.timestamp.body
    with the base64-decoded secret, compare in constant time, check the time."""
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    content = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def fire(n: int = 0):
    return checks.claim(kind="queue_behind", subject=f"q{n}", firing=True, title=f"Queue behind {n}", text="x")


def test_each_delivery_is_signed_and_verifies_with_an_independent_check(hook):  # noqa: F811
    fire()
    assert dispatch_all() == 1
    [(headers, body)] = hook.received
    secret = ChannelSecret.objects.get(channel__kind="webhook").secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    delivery = Delivery.objects.get()
    assert headers["webhook-id"] == headers["idempotency-key"] == f"alert-delivery-{delivery.pk}"
    assert headers["webhook-signature"].startswith("v1,") and headers["content-type"] == "application/json"
    assert verified(secret, headers, body)
    # The verifier is not a rubber stamp: any change to id, time, body or key fails it.
    assert not verified(secret, headers, body.replace(b"Queue", b"Queux"))
    assert not verified(secret, {**headers, "webhook-id": "alert-delivery-0"}, body)
    assert not verified(secret, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}, body,
                        tolerance=10**9)
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert not verified(other, headers, body)


def test_the_id_is_stable_across_retries_and_every_attempt_verifies(hook, settings):  # noqa: F811
    hook.down.set()
    fire()
    assert dispatch_all() == 0
    hook.down.clear()
    Delivery.objects.update(next_attempt_at=Now())
    assert dispatch_all() == 1
    requests = hook.received
    assert len(requests) == 4  # the first attempt and its two quick retries (503), then the second
    secret = ChannelSecret.objects.get().secret
    assert {headers["webhook-id"] for headers, _ in requests} == {f"alert-delivery-{Delivery.objects.get().pk}"}
    assert all(verified(secret, headers, body) for headers, body in requests)


def test_a_summary_is_signed_too(hook, settings):  # noqa: F811
    settings.ALERT_RATE_LIMIT = 2
    for n in range(5):
        fire(n)
    assert dispatch_all() == 2
    secret = ChannelSecret.objects.get().secret
    assert all(verified(secret, headers, body) for headers, body in hook.received)
    assert b'"summary"' in hook.received[-1][1]


SECRET_SHOWN = re.compile(r'<code class="signing-secret">(whsec_[A-Za-z0-9+/=]+)</code>')


def test_the_secret_is_shown_once_after_creation_and_never_again(client, staff):
    staff("add_alertchannel", "change_alertchannel", "view_alertchannel")
    page = client.post("/admin/alerts/alertchannel/add/", follow=True,
                       data={"kind": "webhook", "target": "https://hooks.example.com/alerts", "enabled": "on"})
    [shown] = SECRET_SHOWN.findall(page.content.decode())
    channel = AlertChannel.objects.get()
    assert shown == ChannelSecret.objects.get(channel=channel).secret
    for path in ("/admin/alerts/alertchannel/", f"/admin/alerts/alertchannel/{channel.pk}/change/",
                 f"/admin/alerts/alertchannel/{channel.pk}/history/"):
        assert shown not in client.get(path).content.decode(), path
    client.post(f"/admin/alerts/alertchannel/{channel.pk}/change/", follow=True,
                data={"kind": "webhook", "target": "https://hooks.example.com/other", "enabled": "on"})
    assert ChannelSecret.objects.get(channel=channel).secret == shown  # an edit keeps it
    assert shown not in client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/").content.decode()


def test_rotating_shows_the_new_secret_once_and_signs_with_it(client, staff, hook):  # noqa: F811
    channel = AlertChannel.objects.get(kind="webhook")
    fire(0)
    dispatch_all()
    old = ChannelSecret.objects.get(channel=channel).secret  # made at the first send: never shown to anyone
    staff("change_alertchannel", "view_alertchannel")
    page = client.post("/admin/alerts/alertchannel/", follow=True,
                       data={"action": "rotate_signing_secret", "_selected_action": [channel.pk]})
    [new] = SECRET_SHOWN.findall(page.content.decode())
    assert new != old and new == ChannelSecret.objects.get(channel=channel).secret
    assert new not in client.get("/admin/alerts/alertchannel/").content.decode()
    fire(1)
    dispatch_all()
    headers, body = hook.received[-1]
    assert verified(new, headers, body) and not verified(old, headers, body)


def test_email_channels_get_no_secret(client, staff):
    staff("add_alertchannel", "change_alertchannel", "view_alertchannel")
    page = client.post("/admin/alerts/alertchannel/add/", follow=True,
                       data={"kind": "email", "target": "ops@example.com", "enabled": "on"})
    assert not SECRET_SHOWN.findall(page.content.decode()) and not ChannelSecret.objects.exists()


@pytest.mark.parametrize(("status", "final"), [(400, True), (401, True), (404, True), (410, True), (422, True),
                                                (408, False), (429, False), (500, False), (503, False)])
def test_a_4xx_other_than_408_and_429_is_final(hook, status, final):  # noqa: F811
    hook.status = status
    fire()
    assert dispatch_all() == 0
    delivery = Delivery.objects.get()
    assert f"webhook answered {status}" in delivery.last_error and delivery.attempts == 1
    assert delivery.status == ("failed" if final else "pending")
    Delivery.objects.update(next_attempt_at=Now())
    dispatch_all()
    assert Delivery.objects.get().attempts == (1 if final else 2)  # a final answer is not retried


def test_the_readme_verification_accepts_a_real_delivery_and_nothing_else(hook):  # noqa: F811
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [snippet] = [block for block in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "def verify(" in block]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README's example
    fire()
    dispatch_all()
    [(headers, body)] = hook.received
    secret = ChannelSecret.objects.get().secret
    assert namespace["verify"](secret, headers, body)
    assert not namespace["verify"](secret, headers, body + b" ")
    assert not namespace["verify"](secret, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}, body)
