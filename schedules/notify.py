"""Change notices to running schedulers: ids only, over Redis pub/sub.

Sent after the transaction commits (a rolled-back edit sends nothing). A lost
notice costs latency, not correctness: schedulers also poll the
change log and run a full diff (schedules.runtime.feed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

CHANNEL = "scanner:schedule-changes"


def publish_schedule_changes(schedule_ids: Iterable = (), *, profile_ids: Iterable = ()) -> None:
    payload = {"schedule_ids": [str(i) for i in schedule_ids], "profile_ids": [str(i) for i in profile_ids]}
    if not settings.REDIS_URL or not (payload["schedule_ids"] or payload["profile_ids"]):
        return
    transaction.on_commit(lambda: _publish(json.dumps(payload)))


def _publish(message: str) -> None:
    from django_redis import get_redis_connection

    try:
        get_redis_connection("default").publish(CHANNEL, message)
    except Exception as exc:  # noqa: BLE001 - the change-log poll delivers the change anyway
        logger.warning("Could not publish a schedule change notice (%s); schedulers will find it by polling", exc)
