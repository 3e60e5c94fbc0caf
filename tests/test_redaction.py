"""The one redaction path (scanner_project.redaction.redact) and the logging
filter that applies it to every log line the service writes."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings

from scanner_project.logformat import JsonFormatter
from scanner_project.redaction import RedactingFilter, redact, redact_data, redact_userinfo, shown

SECRET = "s3cr3t-Value_42"

REDACTED = [
    # URL user info, with and without a scheme, and the loose form
    (f"https://user:{SECRET}@api.example.com/x", "https://***@api.example.com/x"),
    (f"see //admin:{SECRET}@db.internal:5432/app", "see //***@db.internal:5432/app"),
    (f"postgresql//user:{SECRET}@host/db", "postgresql//***@host/db"),
    # query parameters whose names look secret, anywhere in a text, any case
    (f"GET /schedules?api_key={SECRET}&page=2", "GET /schedules?api_key=***&page=2"),
    (f"https://h/x?page=1&Token={SECRET}", "https://h/x?page=1&Token=***"),
    (f"https://h/x?X-Api-Key={SECRET}", "https://h/x?X-Api-Key=***"),
    (f"https://h/x?apikey={SECRET};sig={SECRET}", "https://h/x?apikey=***;sig=***"),
    (f"https://h/x?client_secret={SECRET}&access_token={SECRET}", "https://h/x?client_secret=***&access_token=***"),
    (f"https://h/x?password={SECRET}&passwd={SECRET}&pwd={SECRET}", "https://h/x?password=***&passwd=***&pwd=***"),
    (f"https://s3/x?X-Amz-Signature={SECRET}&X-Amz-Date=20260101", "https://s3/x?X-Amz-Signature=***&X-Amz-Date=20260101"),
    (f"https://h/x?auth={SECRET}#frag", "https://h/x?auth=***#frag"),
    (f"'https://h/x?key={SECRET}'", "'https://h/x?key=***'"),
    # webhook services whose path is the secret: the host only
    (f"https://hooks.slack.com/services/T0001/B0001/{SECRET}", "https://hooks.slack.com/***"),
    (f"https://discord.com/api/webhooks/123456/{SECRET}?wait=true", "https://discord.com/***"),
    (f"https://discordapp.com/api/webhooks/1/{SECRET}", "https://discordapp.com/***"),
    (f"https://outlook.office.com/webhook/{SECRET}/IncomingWebhook/x/y", "https://outlook.office.com/***"),
    (f"https://contoso.webhook.office.com/webhookb2/{SECRET}@tenant/IncomingWebhook/a/b",
     "https://contoso.webhook.office.com/***"),
    (f"https://hooks.zapier.com/hooks/catch/123/{SECRET}/", "https://hooks.zapier.com/***"),
    (f"POST https://api.telegram.org/bot123456:{SECRET}/sendMessage failed", "POST https://api.telegram.org/*** failed"),
    # the same secret paths behind another host, or with no host at all
    (f"Max retries exceeded with url: /services/T0001/B0001/{SECRET} (Caused by", "Max retries exceeded with url: /services/*** (Caused by"),
    (f"http://relay.internal/api/webhooks/99/{SECRET}", "http://relay.internal/api/webhooks/***"),
    # a bearer credential
    (f"Authorization: Bearer {SECRET}", "Authorization: Bearer ***"),
]

KEPT = [
    "API sync: 3 created, 0 updated",
    "https://example.com/services/billing?page=2&sort=name",
    "see /services for details; a=b",
    "user@example.com wrote",
]


@pytest.mark.parametrize("text, expected", REDACTED)
def test_redact_replaces_every_kind_of_secret_and_is_idempotent(text, expected):
    assert redact(text) == expected
    assert SECRET not in redact(text)
    assert redact(redact(text)) == redact(text)


@pytest.mark.parametrize("text", KEPT)
def test_redact_leaves_ordinary_text_alone(text):
    assert redact(text) == text


def test_the_older_helpers_take_the_same_path():
    url = f"https://u:{SECRET}@hooks.slack.com/services/T1/B1/{SECRET}?token={SECRET}"
    assert SECRET not in redact_userinfo(url) and SECRET not in shown(url)
    assert shown(url).startswith("'https://***@hooks.slack.com/***")
    data = {"message": url, "attempts": [{"error": f"x?api_key={SECRET}"}], "n": 2}
    assert SECRET not in json.dumps(redact_data(data)) and redact_data(data)["n"] == 2


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("urllib3.connectionpool", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_the_filter_redacts_format_arguments_and_exception_text():
    try:
        raise ConnectionError(f"failed: https://api.example.com/s?api_key={SECRET}")
    except ConnectionError:
        import sys

        exc_info = sys.exc_info()
    record = _record("Retrying (%r) after connection broken by %r: %s", "Retry(total=2)", "NewConnectionError()",
                     f"/schedules?api_key={SECRET}", exc_info=exc_info)
    assert RedactingFilter().filter(record) is True
    text = logging.Formatter("%(message)s").format(record)
    assert SECRET not in text and "api_key=***" in text
    assert SECRET not in JsonFormatter().format(record)
    # a record with nothing to redact keeps its arguments (for handlers that group by them)
    plain = _record("%d schedules", 3)
    RedactingFilter().filter(plain)
    assert plain.args == (3,) and plain.getMessage() == "3 schedules"


def test_the_filter_is_installed_on_every_root_handler_by_the_settings():
    config = django_settings.LOGGING
    names = [name for name, spec in config["filters"].items() if spec.get("()") == "scanner_project.redaction.RedactingFilter"]
    assert names, "settings.LOGGING defines the redacting filter"
    for handler in config["root"]["handlers"]:
        assert set(names) & set(config["handlers"][handler].get("filters", [])), handler
    # and the configured root handlers carry it in this process
    root = logging.getLogger()
    configured = [h for h in root.handlers if any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert configured


def test_a_urllib3_retry_warning_through_the_configured_handler_is_redacted():
    root = logging.getLogger()
    handler = next(h for h in root.handlers if any(isinstance(f, RedactingFilter) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        logging.getLogger("urllib3.connectionpool").warning(
            "Retrying (%r) after connection broken by '%r': %s", "Retry(total=1)", "NewConnectionError",
            f"/schedules?api_key={SECRET}")
    finally:
        handler.setStream(old)
    assert "api_key=***" in stream.getvalue() and SECRET not in stream.getvalue()
