"""Field validators shared by the model, admin forms and the API importer."""

import re

from django.core.exceptions import ValidationError

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
# A bare host name or IPv4 address, optionally with a port (local demos and
# tests scan servers on loopback ports). No scheme, path, spaces or user info.
_HOST_RE = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}\.?(?::(?P<port>\d{{1,5}}))?$")


def validate_domain(value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("domain: %(value)r is not a host name", params={"value": value}, code="invalid")
    host = value.lower()
    match = _HOST_RE.match(host)
    port = match and match.group("port")
    if (
        not match
        or len(host.split(":")[0]) > 253
        or (port is not None and not 0 < int(port) < 65536)
    ):
        raise ValidationError(
            "domain: %(value)r is not a host name (give e.g. example.com, without scheme, path or spaces)",
            params={"value": value},
            code="invalid",
        )


def validate_domain_config_id(value: str) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip() or len(value) > 255:
        raise ValidationError(
            "domain_config_id: %(value)r must be a non-empty identifier without surrounding spaces",
            params={"value": value},
            code="invalid",
        )
