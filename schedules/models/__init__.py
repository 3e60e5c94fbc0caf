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

__all__ = [
    "BOOKKEEPING_FIELDS",
    "SCAN_SETTING_KEYS",
    "ChangeRecordingModel",
    "ChangeRecordingQuerySet",
    "ScanProfile",
    "Schedule",
    "ScheduleChange",
    "ScheduleQuerySet",
    "SchedulerInstance",
    "SchedulerInstanceQuerySet",
    "_default_timezone",  # named by migration 0001 as schedules.models._default_timezone
    "validate_scan_settings",
]
