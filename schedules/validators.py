"""Field validators shared by the model, admin forms and the API importer."""

import re
import unicodedata

import idna
from django.core.exceptions import ValidationError

from scanner_project.redaction import shown

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
# A bare host name or IPv4 address, optionally with a port (local demos and
# tests scan servers on loopback ports). No scheme, path, spaces or user info.
# \Z, not $: "$" also matches before a trailing newline.
_HOST_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?\Z")
_PORT_RE = re.compile(r"\d{1,5}\Z")


def _invalid_domain(value) -> ValidationError:
    return ValidationError(
        "domain: %(value)s is not a host name (give e.g. example.com, without scheme, path or spaces)",
        params={"value": shown(value)},
        code="invalid",
    )


def normalize_domain(value) -> str:
    """The host as it is stored and scanned: NFKC, then IDNA (UTS 46) to
    lower-case ASCII, so EXAMPLE.\\u212aOM (a Kelvin sign) is example.kom and
    bücher.de is xn--bcher-kva.de; a port is kept. Raises ValidationError."""
    if not isinstance(value, str) or not value:
        raise ValidationError("domain: %(value)s is not a host name", params={"value": shown(value)}, code="invalid")
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "")
    if port and (not _PORT_RE.match(port) or not 0 < int(port) < 65536):
        raise _invalid_domain(value)
    try:
        ascii_host = idna.encode(unicodedata.normalize("NFKC", host), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _invalid_domain(value) from None
    if not _HOST_RE.match(ascii_host) or len(ascii_host) > 253:
        raise _invalid_domain(value)
    return f"{ascii_host}:{port}" if port else ascii_host


def validate_domain(value: str) -> None:
    normalize_domain(value)


def validate_domain_config_id(value: str) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip() or len(value) > 255:
        raise ValidationError(
            "domain_config_id: %(value)s must be a non-empty identifier without surrounding spaces",
            params={"value": shown(value)},
            code="invalid",
        )


def is_integer(value) -> bool:
    """The one number rule of every numeric setting (time_config, spread_minutes,
    scan settings), wherever it comes from: a JSON integer. Not true/false
    (bool is an int in Python), not "60", not 1.5 or 60.0."""
    return isinstance(value, int) and not isinstance(value, bool)
