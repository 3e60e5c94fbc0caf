"""A ``once`` schedule is bounded (with its spread) so that every page can show
it in every zone: its time must be before 9000-01-01T00:00:00Z (ONCE_LATEST).

A year-9999 time with a spread used to save from admin and from the import;
with TIME_ZONE=Asia/Tokyo its slot (at + spread offset) lies past 9999-12-31 in
local time, and the schedule list, its page and the dashboard answered 500.
"""

import importlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.apps import apps
from django.urls import reverse

from schedules.importer.apply import import_entries
from schedules.models import Schedule
from schedules.timing.spread import MAX_SPREAD_MINUTES, spread_offset
from schedules.timing.triggers import ONCE_LATEST, TimeConfigError, build_trigger
from tests.api_server import entry
from tests.stored_rows import snapshot

pytestmark = pytest.mark.django_db

UTC = timezone.utc
YEAR_9999 = "9999-12-30T23:59:59Z"
# The zones furthest east and west of UTC, and the one of the report.
ZONES = ("Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT-14", "Etc/GMT+12")


def _late_offset_id() -> uuid.UUID:
    """A schedule id whose offset in the widest spread window is nearly the whole day."""
    window = MAX_SPREAD_MINUTES * 60
    return next(uuid.UUID(int=n) for n in range(1, 10**6)
                if spread_offset(uuid.UUID(int=n), MAX_SPREAD_MINUTES) > window - 600)


def _form(**overrides):
    return {"domain_config_id": "cfg-new", "domain": "new.example.com", "profile": "", "enabled": "on",
            "frequency": "once", "time_config": f'{{"at": "{YEAR_9999}"}}', "timezone": "UTC", "scan_settings": "{}",
            "spread_minutes": str(MAX_SPREAD_MINUTES)} | overrides


def _pages(client, schedule):
    return [reverse("admin:schedules_schedule_changelist"), reverse("admin:schedules_schedule_change", args=[schedule.pk]),
            "/admin/dashboard/"]


@pytest.mark.parametrize("at", [YEAR_9999, "9000-01-01T00:00:00Z", "9000-01-01T09:00:00+09:00"])
def test_a_once_at_or_after_the_bound_is_refused_by_the_trigger(at):
    with pytest.raises(TimeConfigError) as error:
        build_trigger("once", {"at": at}, "Asia/Tokyo")
    assert error.value.field == "time_config.at"
    assert f"{at!r} is too far in the future" in str(error.value) and "9000-01-01" in str(error.value)


@pytest.mark.parametrize("zone", ZONES)
def test_admin_refuses_a_year_9999_once_with_a_spread_naming_it(admin_client, stored, settings, zone):
    settings.TIME_ZONE = zone
    response = admin_client.post(reverse("admin:schedules_schedule_add"), _form(timezone=zone))
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["time_config"])
    assert f"time_config.at: {YEAR_9999!r} is too far in the future" in errors
    assert snapshot() == stored["snapshot"]


def test_the_import_refuses_a_year_9999_once_with_a_spread_naming_it(stored):
    answer = [entry("far", schedule={"frequency": "once", "time": {"at": YEAR_9999}, "spread_minutes": 60})]
    result = import_entries(entries=answer)
    assert result["rejected"] == [f"far: time_config.at: {YEAR_9999!r} is too far in the future: a once schedule "
                                  f"must be before {ONCE_LATEST.isoformat()}"]
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("zone", ZONES)
def test_the_latest_accepted_once_with_the_widest_spread_shows_on_every_page_in_every_zone(admin_client, settings,
                                                                                          zone):
    settings.TIME_ZONE = zone
    latest = (ONCE_LATEST - timedelta(seconds=1)).isoformat()
    schedule = Schedule(schedule_id=_late_offset_id(), domain_config_id="latest", domain="latest.example.com",
                        frequency="once", time_config={"at": latest}, timezone=zone, spread_minutes=MAX_SPREAD_MINUTES)
    schedule.full_clean()
    schedule.save()
    assert schedule.next_run > ONCE_LATEST  # the spread moved the slot past the bound
    for page in _pages(admin_client, schedule):
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert b"latest.example.com" in response.content


def test_a_year_9999_row_stored_before_the_bound_no_longer_breaks_any_page(admin_client, settings):
    """Rows saved before the bound existed: the migration clears their next_run
    (they can never run), and their page says the time config is invalid."""
    settings.TIME_ZONE = "Asia/Tokyo"
    schedule = Schedule(schedule_id=_late_offset_id(), domain_config_id="old", domain="old.example.com",
                        frequency="once", time_config={"at": "2999-01-01T00:00:00Z"}, spread_minutes=MAX_SPREAD_MINUTES)
    schedule.full_clean()
    schedule.save()
    Schedule.objects.filter(pk=schedule.pk).update(time_config={"at": YEAR_9999})
    Schedule.objects.filter(pk=schedule.pk).update(next_run=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    migration = importlib.import_module("schedules.migrations.0005_clear_unshowable_once_next_run")
    migration.clear_unshowable_next_runs(apps, None)
    assert Schedule.objects.get(pk=schedule.pk).next_run is None
    for page in _pages(admin_client, schedule):
        response = admin_client.get(page)
        assert response.status_code == 200, page
    change = admin_client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk])).content.decode()
    assert "Invalid: time_config.at" in change
