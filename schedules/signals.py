"""Signals only announce changes; applying them is the schedulers' business."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from schedules.models import ScanProfile, Schedule
from schedules.notify import publish_schedule_changes


@receiver(post_save, sender=Schedule, dispatch_uid="schedule-saved")
@receiver(post_delete, sender=Schedule, dispatch_uid="schedule-deleted")
def announce_schedule_change(sender, instance: Schedule, **kwargs):
    publish_schedule_changes([instance.schedule_id])


@receiver(post_save, sender=ScanProfile, dispatch_uid="profile-saved")
@receiver(post_delete, sender=ScanProfile, dispatch_uid="profile-deleted")
def announce_profile_change(sender, instance: ScanProfile, **kwargs):
    publish_schedule_changes(profile_ids=[instance.profile_id])
