"""Environment parsing that names the variable and value when either is wrong.

django-environ does the casting; this module only turns its bare ``ValueError``
("invalid literal for int()") into a start-up error an operator can act on.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import warnings
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from scanner_project.redaction import shorten, shown, userinfo_in
from scanner_project.timezones import is_zone_name

env = environ.Env()

_UNSET = object()


def _url_password(value: str) -> str:
    try:
        return urlsplit(value).password or ""
    except ValueError:
        return ""


def _invalid(name: str, reason: str) -> ImproperlyConfigured:
    value = env.str(name, default="")
    # A URL's password must not reach the start-up error (and so the logs),
    # also when the URL is mistyped (postgresql//user:pw@host) and so unparsable.
    secrets = [_url_password(value), *userinfo_in(value)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        replacement = "***@" if secret.endswith("@") else "***"
        value, reason = value.replace(secret, replacement), reason.replace(secret, replacement)
    return ImproperlyConfigured(f"{name}={shown(value)} is invalid: {shorten(reason)}")


def _cast(name: str, reader: Callable[..., Any], default: Any, kind: str) -> Any:
    try:
        return reader(name, default=default)
    except (ValueError, TypeError) as exc:
        raise _invalid(name, f"expected {kind} ({exc})") from None


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _cast(name, env.int, default, "an integer")
    if minimum is not None and value < minimum:
        raise _invalid(name, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise _invalid(name, f"must be at most {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _cast(name, env.float, default, "a number")
    if minimum is not None and value < minimum:
        raise _invalid(name, f"must be at least {minimum}")
    return value


_TRUE = {"true", "on", "ok", "y", "yes", "1"}
_FALSE = {"false", "off", "n", "no", "0", ""}


def env_bool(name: str, default: bool) -> bool:
    # django-environ reads any unknown word as False; a typo such as
    # JOB_COALESCE=ture must stop start-up instead of silently flipping the flag.
    raw = env.str(name, default=_UNSET)
    if raw is _UNSET:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise _invalid(name, "expected true or false")


def env_str(name: str, default: str = "") -> str:
    return env.str(name, default=default)


def env_list(name: str, default: list[str]) -> list[str]:
    return env.list(name, default=default)


def env_networks(name: str) -> list[str]:
    networks = [item.strip() for item in env_list(name, []) if item.strip()]
    for network in networks:
        try:
            ipaddress.ip_network(network)
        except ValueError:
            raise _invalid(name, f"{network!r} is not a network such as 10.20.0.0/16") from None
    return networks


def env_timezone(name: str, default: str) -> str:
    value = env_str(name, default)
    if not is_zone_name(value):  # localtime, posixrules and Factory are no place (scanner_project.timezones)
        raise _invalid(name, "not an IANA time zone such as Europe/Berlin")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise _invalid(name, f"expected one of {', '.join(choices)}")
    return value


def env_database(name: str, default: str) -> dict[str, Any]:
    try:
        # django-environ warns "Engine not recognized from url: {...}" with the
        # password in it; the error below says the same without it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            config = env.db_url_config(env_str(name) or default)
    except (ValueError, KeyError, ImproperlyConfigured) as exc:
        raise _invalid(name, f"not a database URL ({exc})") from None
    if config.get("ENGINE") not in _SUPPORTED_ENGINES:
        raise _invalid(name, "not a database URL (use postgresql://user:password@host:5432/name or sqlite:///path)")
    return config


_SUPPORTED_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")


def redis_url() -> str:
    """REDIS_URL, or one built from the original design's REDIS_HOST/PORT/DB/PASSWORD.

    Empty when neither is set: the embedded default runs without Redis.
    """
    url = env_str("REDIS_URL")
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise _invalid("REDIS_URL", "expected redis://host:port/db")
        return url
    host = env_str("REDIS_HOST")
    if not host:
        return ""
    port = env_int("REDIS_PORT", 6379, minimum=1, maximum=65535)
    db = env_int("REDIS_DB", 0, minimum=0)
    password = env_str("REDIS_PASSWORD")
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def private_sqlite_file(config: dict[str, Any]) -> None:
    """Creates the SQLite database file readable by its owner only (0600);
    SQLite would create it with the umask's 0644, and it holds the sessions."""
    name = str(config.get("NAME") or "")
    if config.get("ENGINE") != "django.db.backends.sqlite3" or not name or name == ":memory:" or name.startswith("file:"):
        return
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: cannot create the SQLite file {name!r}: {exc.strerror}") from None


def local_secret_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
