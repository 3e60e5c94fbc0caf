"""Reads of schedules (the original design's query calls)."""

from __future__ import annotations

from django.db.models import QuerySet

from schedules.models import Schedule


def get_schedules_by_domain(*, domain: str) -> QuerySet[Schedule]:
    return Schedule.objects.filter(domain__iexact=domain.strip())


def get_schedule_by_domain_config_id(*, domain_config_id: str) -> Schedule | None:
    return Schedule.objects.filter(domain_config_id=domain_config_id).first()
