"""Feed: live schedule changes reach the job table of a running instance, three ways.
Fastest first:

1. Redis pub/sub notices (ids only), sent after commit by signals, admin bulk
   actions and the API import: applied within milliseconds.
2. The change log (ScheduleChange rows, written in the same transaction as
   every insert, update and delete, bulk ones too), polled every
   CHANGE_POLL_INTERVAL: catches what a lost notice missed, deletes included,
   and is the only path without Redis.
3. A full hash comparison of every enabled schedule against the loaded jobs
   every ``schedule_check_interval``: catches a raw SQL write that bypassed
   the ORM, and logs how many jobs it fixed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Callable, Protocol

from django.db import DatabaseError, close_old_connections
from django.db.models import Max
from django.db.models.functions import Now
from django_redis import get_redis_connection
from redis.client import PubSub

from schedules.models import Schedule, ScheduleChange
from schedules.notify import CHANNEL
from schedules.runtime.specs import JobSpec, enabled_digests, iter_specs

logger = logging.getLogger("schedules.runtime.feed")

# How long a change id below the highest one read may still commit (see poll).
GAP_SECONDS = 30.0
PRUNE_AFTER = timedelta(hours=1)


class JobTarget(Protocol):
    """Where the feed sends what it found (job_table.JobTable)."""

    def apply_spec(self, schedule_id: uuid.UUID, wanted: JobSpec | None, *, source: str) -> bool: ...

    def digests(self) -> dict[uuid.UUID, str]: ...

    def held_shards(self) -> list[int] | None: ...


class ChangeFeed:
    def __init__(self, *, jobs: JobTarget, redis_url: str, stop: threading.Event,
                 on_changes: Callable[[set[uuid.UUID]], None] | None = None):
        """``on_changes``: called with the ids of every batch of changed
        schedules seen (a pause is recorded as a change too: see pauses.services)."""
        self.jobs = jobs
        self.notices = bool(redis_url)  # notices travel over Redis pub/sub; without it, the change log alone
        self.on_changes = on_changes
        self.highest = 0  # the highest change id read
        self._gaps: dict[int, float] = {}  # lower ids not read yet -> when first missed
        self._poll_mutex = threading.Lock()
        self._stop = stop
        self.pubsub: PubSub | None = None
        self.last_full_diff_fixed = 0
        self.last_full_diff_seconds = 0.0

    def describe(self) -> dict:
        return {
            "notices": "redis" if self.notices else "off",
            "subscribed": self.pubsub is not None and bool(getattr(self.pubsub, "subscribed", False)),
            "last_full_diff_fixed": self.last_full_diff_fixed,
            "last_full_diff_seconds": round(self.last_full_diff_seconds, 3),
        }

    # --- 1. notices -------------------------------------------------------
    def listen(self) -> None:
        """Apply notices as they come until the instance stops (a loop of loops.Loops)."""
        down_logged = False
        while not self._stop.is_set():
            try:
                self.pubsub = get_redis_connection("default").pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(CHANNEL)
                if down_logged:
                    logger.warning("Change notices: resubscribed; checking for changes sent meanwhile")
                    down_logged = False
                    self._safely(self.poll)
                while not self._stop.is_set():
                    message = self.pubsub.get_message(timeout=0.5)
                    if message and message.get("type") == "message":
                        self._safely(lambda data=message["data"]: self.apply_notice(data))
            except Exception as exc:  # noqa: BLE001 - any Redis failure: retry, the change log covers meanwhile
                if not down_logged:
                    logger.warning("Change notices unavailable (%s); relying on the database check", exc)
                    down_logged = True
                self._stop.wait(1.0)
            finally:
                if self.pubsub is not None:
                    try:
                        self.pubsub.close()
                    except Exception:  # noqa: BLE001
                        pass
                    self.pubsub = None

    def apply_notice(self, raw: bytes | str) -> int:
        try:
            notice = json.loads(raw)
            schedule_ids = {uuid.UUID(str(i)) for i in notice.get("schedule_ids", [])}
            profile_ids = [uuid.UUID(str(i)) for i in notice.get("profile_ids", [])]
        except (ValueError, TypeError, AttributeError):
            logger.warning("Ignored a malformed change notice: %r", raw[:200])
            return 0
        if profile_ids:
            schedule_ids |= set(Schedule.objects.filter(profile_id__in=profile_ids).values_list("schedule_id", flat=True))
        return self.apply_ids(schedule_ids, source="notice")

    def apply_ids(self, schedule_ids: set[uuid.UUID], *, source: str) -> int:
        if not schedule_ids:
            return 0
        if self.on_changes is not None:
            self.on_changes(schedule_ids)
        wanted: dict[uuid.UUID, JobSpec] = {}
        held = self.jobs.held_shards()
        for chunk in _chunks(list(schedule_ids), 1000):
            rows = Schedule.objects.filter(schedule_id__in=chunk, enabled=True)
            if held is not None:  # only the owner of a schedule's shard applies its change
                rows = rows.filter(shard__in=held)
            wanted.update((s.schedule_id, s) for s in iter_specs(rows, keep_settings=False))
        return sum(self.jobs.apply_spec(sid, wanted.get(sid), source=source) for sid in schedule_ids)

    # --- 2. change log ---------------------------------------------------
    def begin(self) -> None:
        """Note the last change before loading jobs: anything later is applied."""
        self.highest = ScheduleChange.objects.aggregate(last=Max("id"))["last"] or 0

    def poll(self) -> int:
        """Apply the schedules recorded in ScheduleChange since the last poll.

        Ids are handed out before commit, so a slow transaction can commit a
        lower id after a higher one was read. Skipped ids stay open for
        GAP_SECONDS and are asked for again (after that they were rolled back,
        or the full diff covers them).
        """
        with self._poll_mutex:  # the notice thread polls too, after a Redis outage
            return self._poll()

    def _poll(self) -> int:
        # From the lowest open id: a range, however many ids a rolled-back bulk write left open.
        since = min(self._gaps, default=self.highest + 1) - 1
        rows = [row for row in ScheduleChange.objects.filter(id__gt=since).values_list("id", "schedule_id", "profile_id")
                if row[0] > self.highest or row[0] in self._gaps]
        schedule_ids = {sid for _, sid, _ in rows if sid is not None}
        profile_ids = {pid for _, _, pid in rows if pid is not None}
        if profile_ids:
            schedule_ids |= set(Schedule.objects.filter(profile_id__in=profile_ids).values_list("schedule_id", flat=True))
        applied = self.apply_ids(schedule_ids, source="change-log")
        self._note_read({row[0] for row in rows}, now=time.monotonic())
        return applied

    def _note_read(self, ids: set[int], *, now: float) -> None:
        for change_id in ids & self._gaps.keys():
            del self._gaps[change_id]
        highest = max(ids, default=self.highest)
        for change_id in range(self.highest + 1, highest):
            if change_id not in ids:
                self._gaps[change_id] = now
        self.highest = max(highest, self.highest)
        for change_id, since in list(self._gaps.items()):
            if now - since > GAP_SECONDS:
                del self._gaps[change_id]

    def prune(self) -> int:
        """Change rows older than PRUNE_AFTER are of no use to anyone."""
        deleted, _ = ScheduleChange.objects.filter(changed_at__lt=Now() - PRUNE_AFTER).delete()
        return deleted

    # --- 3. full diff -----------------------------------------------------
    def full_diff(self) -> int:
        """Compare the database's digest of every enabled schedule of the
        held shards with the digest each loaded job was built from; rebuild
        only what differs."""
        started = time.monotonic()
        loaded = self.jobs.digests()
        stale: set[uuid.UUID] = set()
        seen: set[uuid.UUID] = set()
        for schedule_id, digest in enabled_digests(shards=self.jobs.held_shards()):
            seen.add(schedule_id)
            if loaded.get(schedule_id) != digest:
                stale.add(schedule_id)
        stale |= loaded.keys() - seen
        fixed = self.apply_ids(stale, source="full-diff") if stale else 0
        self.last_full_diff_fixed = fixed
        self.last_full_diff_seconds = time.monotonic() - started
        if fixed:
            logger.warning("Full diff fixed %d job(s) that notices and the change log missed", fixed)
        else:
            logger.debug("Full diff: %d jobs in step (%.2f s)", len(loaded), self.last_full_diff_seconds)
        return fixed

    def _safely(self, task) -> None:
        try:
            task()
        except DatabaseError as exc:
            logger.warning("Could not apply change notice: %s", exc)
        finally:
            close_old_connections()


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
