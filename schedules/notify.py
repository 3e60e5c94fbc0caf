"""Change notices to running schedulers (ids only).

The live-changes issue fills this in with Redis pub/sub; until then running
schedulers pick up changes through their periodic diff.
"""

from collections.abc import Iterable


def publish_schedule_changes(schedule_ids: Iterable) -> None:
    del schedule_ids
