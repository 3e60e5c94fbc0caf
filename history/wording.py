"""Durations in words for people: "7 years", "4 minutes", "12 s"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.utils.timesince import timesince

_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def duration_in_words(delta: timedelta) -> str:
    """The largest unit only, as Django's timesince words it; seconds below a minute."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    return timesince(_EPOCH, _EPOCH + delta, depth=1).replace("\xa0", " ")


def lateness(*, scheduled_for: datetime | None, started_at: datetime | None) -> str:
    """ "started 4 minutes late", "on time", or "" for a manual run."""
    if scheduled_for is None or started_at is None:
        return ""
    late = started_at - scheduled_for
    if late < timedelta(seconds=1):
        return "on time"
    return f"started {duration_in_words(late)} late"
