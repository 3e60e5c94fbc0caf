"""The time-zone names schedules and TIME_ZONE may use: IANA zones of places.

``zoneinfo.ZoneInfo`` opens any file under the host's zoneinfo directory, so it
also takes names that are no place at all: ``localtime`` is the host's own
setting (two hosts would compute different slots for one schedule),
``posixrules`` a template for POSIX TZ strings and ``Factory`` the "no zone
configured" placeholder. Accepted are the names ``zoneinfo.available_timezones()``
lists that the pinned ``tzdata`` package lists too (the same names on every
host), minus those three.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from importlib import resources

NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    names = set(zoneinfo.available_timezones())
    try:
        names &= set(resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())
    except (ModuleNotFoundError, FileNotFoundError):  # without tzdata: the host's own list
        pass
    return frozenset(names - NOT_PLACES)


def is_zone_name(name: object) -> bool:
    return isinstance(name, str) and name in zone_names()


def why_not_a_zone(name: object) -> str:
    """The reason ``name`` is refused, for messages that already show the value."""
    if name in NOT_PLACES:
        return "is not an IANA time zone of a place (it depends on the host); give e.g. Europe/Berlin"
    return "is not an IANA time zone (e.g. Europe/Berlin)"
