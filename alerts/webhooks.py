"""Webhook targets and messages: which URLs may be saved, how a target is
named in messages, how a delivery is signed, and what a failure may say.

A target is checked twice. When it is saved (admin, the Python API through
``full_clean``, ALERT_WEBHOOK_URLS at start-up): http or https, a host, no
user info, one reading of the host. When it is sent to: every address its
host resolves to must be public or in ALERT_ALLOWED_NETWORKS
(scanner_project.outbound.http's public-only session, the probe's rules).

Deliveries are signed in the Standard Webhooks format: headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` + base64 of HMAC-SHA256 over ``{id}.{timestamp}.{body}``, keyed with
the base64-decoded part of the channel's ``whsec_`` secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from requests.exceptions import RequestException, RetryError

from alerts.config import alert_config
from scanner_project.outbound.addresses import AddressRefused, refuse_ambiguous_url
from scanner_project.outbound.http import DeadlineExceeded
from scanner_project.redaction import shown

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

REFUSED_BY_POLICY = ("refused by the address policy: the host does not resolve to a public address "
                     "(ALERT_ALLOWED_NETWORKS allows private networks on purpose)")
# Every transport failure says the same: "connection refused" beside "timed
# out" or "not HTTP" would tell which internal ports answer.
NO_ANSWER = "could not connect or got no HTTP answer"
FINAL_CLIENT_ERROR = "final: a 4xx answer other than 408 and 429 is not retried"


class InvalidTarget(Exception):
    """A target saved before validation (or written around it), refused at send."""


class WebhookAnswered(Exception):
    """The webhook answered with a status other than 2xx."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"webhook answered {status}")

    @property
    def final(self) -> bool:
        return 400 <= self.status < 500 and self.status not in (408, 429)


def target_problem(value: str) -> str | None:
    """Why ``value`` may not be a webhook target, or None: it must be an
    http(s) URL with a host and without user info, whose host every parser
    reads alike (scanner_project.outbound.addresses.refuse_ambiguous_url)."""
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port  # .port raises ValueError when out of range or not a number
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if "@" in parts.netloc:
        return "user info (user:password@) is not allowed"
    if not host:
        return "it has no host"
    try:
        refuse_ambiguous_url(value)
    except AddressRefused as exc:
        return str(exc).removeprefix(f"refusing the URL {shown(value)}: ")
    return None


def validate_webhook_target(value: str) -> None:
    """Raises ValidationError naming the value (user info redacted) and the problem."""
    problem = target_problem(value)
    if problem:
        raise ValidationError(f"{shown(value)} is not a valid webhook URL: {problem}", code="invalid")


def display_target(target: str) -> str:
    """``scheme://host[:port]`` of a webhook URL: never its user info, path or
    query, which may hold a secret (Slack's https://hooks.slack.com/services/T/B/XXXX)."""
    try:
        parts = urlsplit(target)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or parts.scheme not in ("http", "https"):
        return "(not a valid webhook URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def allowed_networks() -> tuple:
    return alert_config().allowed_networks


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(*, secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{digest}"}


_TOO_MANY = re.compile(r"too many (\d{3}) error responses")


def describe_failure(exc: BaseException) -> tuple[str, bool]:
    """(what ``last_error`` and the log may say, whether it is final).

    Never the URL (requests puts its path, and so a secret, in its messages),
    never which kind of connection failure happened."""
    if isinstance(exc, WebhookAnswered):
        text = str(exc) + (" (redirects are not followed)" if 300 <= exc.status < 400 else "")
        return (f"{text}; {FINAL_CLIENT_ERROR}" if exc.final else text), exc.final
    if isinstance(exc, AddressRefused):
        return REFUSED_BY_POLICY, False
    if isinstance(exc, InvalidTarget):
        return f"refused: {exc}", False
    if isinstance(exc, RetryError):
        # urllib3's quick retries ran out on a 5xx answer.
        found = _TOO_MANY.search(str(exc))
        if found:
            return f"webhook answered {found.group(1)}", False
    if isinstance(exc, (RequestException, DeadlineExceeded, OSError)):
        return NO_ANSWER, False
    return f"failed: {type(exc).__name__}", False
