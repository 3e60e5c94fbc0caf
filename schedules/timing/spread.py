"""Spread: each schedule's slots run at a stable offset inside its window.

The offset comes from a hash of the schedule id, so every instance and every
restart computes the same one, and 10,000 schedules due at 02:00 with a
60-minute window start evenly between 02:00 and 03:00.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

UTC = timezone.utc
MAX_SPREAD_MINUTES = 24 * 60


@cache
def default_window_seconds() -> int:
    """DEFAULT_SPREAD_SECONDS, read once: spread_offset runs for every row of
    a full load (100,000 schedules) and must not go back to the settings."""
    return settings.DEFAULT_SPREAD_SECONDS


@receiver(setting_changed)
def _forget_default_window(*, setting: str, **_: Any) -> None:
    # Settings change only under override_settings (tests): read it again then.
    if setting == "DEFAULT_SPREAD_SECONDS":
        default_window_seconds.cache_clear()


def window_seconds(spread_minutes: int | None) -> int:
    """The schedule's own window, or DEFAULT_SPREAD_SECONDS when it has none."""
    return spread_minutes * 60 if spread_minutes is not None else default_window_seconds()


def spread_offset(schedule_id: uuid.UUID | str, spread_minutes: int | None) -> int:
    """Whole seconds in [0, window): the same for a schedule wherever it is computed."""
    window = window_seconds(spread_minutes)
    if window <= 0:
        return 0
    digest = hashlib.blake2b(uuid.UUID(str(schedule_id)).bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % window


class SpreadTrigger(BaseTrigger):
    """Another trigger's fire times, each moved later by ``offset_seconds``."""

    def __init__(self, inner: BaseTrigger, offset_seconds: int):
        self.inner = inner
        self.offset = timedelta(seconds=offset_seconds)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # In UTC: adding to a local time is wall-clock arithmetic, wrong across DST.
        previous = previous_fire_time.astimezone(UTC) - self.offset if previous_fire_time is not None else None
        fire = self.inner.get_next_fire_time(previous, now.astimezone(UTC) - self.offset)
        return fire.astimezone(UTC) + self.offset if fire is not None else None

    def __str__(self) -> str:
        return f"{self.inner} + {self.offset}"


def spread(trigger: BaseTrigger, offset_seconds: int) -> BaseTrigger:
    return SpreadTrigger(trigger, offset_seconds) if offset_seconds else trigger
