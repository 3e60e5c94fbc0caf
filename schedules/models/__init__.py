"""The schedules app's models, one module per concept: the change log and the
recording base (changes), profiles, schedules and scheduler heartbeats."""

from schedules.models.changes import (
    BOOKKEEPING_FIELDS,
    ChangeRecordingModel,
    ChangeRecordingQuerySet,
    ScheduleChange,
)
from schedules.models.heartbeats import SchedulerInstance, SchedulerInstanceQuerySet
from schedules.models.profiles import SCAN_SETTING_KEYS, ScanProfile, validate_scan_settings
from schedules.models.schedule import Schedule, ScheduleQuerySet, _default_timezone
from schedules.models.shards import SHARD_COUNT, ShardLease, ShardMember, shard_of

__all__ = [
    "BOOKKEEPING_FIELDS",
    "SCAN_SETTING_KEYS",
    "SHARD_COUNT",
    "ChangeRecordingModel",
    "ChangeRecordingQuerySet",
    "ScanProfile",
    "Schedule",
    "ScheduleChange",
    "ScheduleQuerySet",
    "ShardLease",
    "ShardMember",
    "SchedulerInstance",
    "SchedulerInstanceQuerySet",
    "_default_timezone",  # named by migration 0001 as schedules.models._default_timezone
    "shard_of",
    "validate_scan_settings",
]
