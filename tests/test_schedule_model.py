import uuid
from datetime import datetime, timezone

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection

from history.models import JobExecution
from schedules.models import ScanProfile, Schedule
from schedules.repository import get_schedule_repository
from schedules.selectors import get_schedule_by_domain_config_id, get_schedules_by_domain
from schedules.services import create_schedule, delete_schedule, update_schedule

pytestmark = pytest.mark.django_db


def test_tables_keep_the_original_names():
    tables = set(connection.introspection.table_names())
    assert {"schedules", "scan_profiles", "job_executions"} <= tables
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM schedules WHERE enabled = TRUE")


@time_machine.travel(datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc), tick=False)
def test_create_schedule_returns_id_and_computes_next_run():
    schedule_id = create_schedule(
        domain_config_id="abc-123", domain="example.com", frequency="daily", time_config={"hour": 2, "minute": 0}
    )
    schedule = Schedule.objects.get(schedule_id=schedule_id)
    assert isinstance(schedule_id, uuid.UUID)
    assert schedule.next_run == datetime(2026, 1, 11, 2, 0, tzinfo=timezone.utc)
    assert schedule.timezone == "UTC"
    assert schedule.description == "Daily at 02:00 UTC"


def test_domain_config_id_accepts_uuids_and_upstream_ids():
    create_schedule(domain_config_id=str(uuid.uuid4()), domain="a.example", frequency="hourly", time_config={"minute": 1})
    create_schedule(domain_config_id="abc-123", domain="b.example", frequency="hourly", time_config={"minute": 1})
    assert Schedule.objects.count() == 2


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"domain": "https://example.com"}, "domain", "'https://example.com' is not a host name"),
        ({"domain": "example.com/path"}, "domain", "is not a host name"),
        ({"domain": "exa mple.com"}, "domain", "is not a host name"),
        ({"domain": ""}, "domain", "cannot be blank"),
        ({"frequency": "fortnightly"}, "frequency", "fortnightly"),
        ({"time_config": {"hour": 25, "minute": 0}}, "time_config", "time_config.hour: 25 is out of range"),
        ({"timezone": "Nowhere/Land"}, "timezone", "'Nowhere/Land' is not an IANA time zone"),
        ({"domain_config_id": " padded "}, "domain_config_id", "without surrounding spaces"),
    ],
)
def test_create_schedule_rejects_bad_values_and_writes_nothing(fields, field, fragment):
    values = {"domain_config_id": "cfg-1", "domain": "example.com", "frequency": "daily",
              "time_config": {"hour": 2, "minute": 0}} | fields
    with pytest.raises(ValidationError) as excinfo:
        create_schedule(**values)
    assert field in excinfo.value.message_dict
    assert any(fragment in message for message in excinfo.value.message_dict[field])
    assert Schedule.objects.count() == 0


def test_update_schedule_validates_and_keeps_the_stored_row_on_error(make_schedule):
    schedule = make_schedule(frequency="daily", time_config={"hour": 2, "minute": 0})
    with pytest.raises(ValidationError) as excinfo:
        update_schedule(schedule_id=schedule.schedule_id, frequency="weekly", time_config={"day": "funday", "hour": 2, "minute": 0})
    assert "time_config" in excinfo.value.message_dict
    schedule.refresh_from_db()
    assert (schedule.frequency, schedule.time_config) == ("daily", {"hour": 2, "minute": 0})

    updated = update_schedule(schedule_id=schedule.schedule_id, frequency="weekly",
                              time_config={"day": "monday", "hour": 2, "minute": 0})
    assert updated.frequency == "weekly"
    with pytest.raises(TypeError, match="nonsense"):
        update_schedule(schedule_id=schedule.schedule_id, nonsense=1)


def test_delete_schedule_keeps_history(make_schedule):
    schedule = make_schedule()
    JobExecution.objects.create(
        schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
        domain_config_id=schedule.domain_config_id, status="success",
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), scheduled_for=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    assert delete_schedule(schedule_id=schedule.schedule_id) is True
    assert delete_schedule(schedule_id=schedule.schedule_id) is False
    execution = JobExecution.objects.get()
    assert execution.schedule_id is None
    assert execution.domain == schedule.domain
    assert execution.domain_config_id == schedule.domain_config_id


def test_selectors_and_repository(make_schedule):
    make_schedule(domain="shop.example.com", domain_config_id="x-1")
    make_schedule(domain="shop.example.com", domain_config_id="x-2")
    make_schedule(domain="other.example.com", domain_config_id="x-3")
    assert {s.domain_config_id for s in get_schedules_by_domain(domain="SHOP.example.com")} == {"x-1", "x-2"}
    assert get_schedule_by_domain_config_id(domain_config_id="x-3").domain == "other.example.com"
    assert get_schedule_by_domain_config_id(domain_config_id="nope") is None

    repo = get_schedule_repository()
    schedule_id = repo.create_schedule(domain_config_id="abc-123", domain="example.com", frequency="daily",
                                       time_config={"hour": 2, "minute": 0}, enabled=True)
    repo.update_schedule(schedule_id=schedule_id, frequency="weekly", time_config={"day": "monday", "hour": 2, "minute": 0})
    assert repo.get_schedule_by_domain_config_id("abc-123").frequency == "weekly"
    assert len(repo.get_schedules_by_domain("example.com")) == 1
    assert repo.delete_schedule(schedule_id) is True


def test_profile_settings_are_overlaid_by_the_schedules_own(make_schedule):
    profile = ScanProfile.objects.create(name="deep", max_pages=10, custom_pages=["/a"], accept_selector="#ok")
    schedule = make_schedule(profile=profile, scan_settings={"maxPages": 50, "description": "Example"})
    from schedules.runtime.specs import load_spec

    settings = load_spec(schedule.schedule_id).scan_settings
    assert settings["maxPages"] == 50
    assert settings["customPages"] == ["/a"]
    assert settings["accept_selector"] == "#ok"
    assert settings["description"] == "Example"


def test_one_execution_per_slot_is_enforced_by_the_database(make_schedule):
    from django.db import IntegrityError, transaction

    schedule = make_schedule()
    slot = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
    common = dict(schedule=schedule, job_id=schedule.job_id, domain=schedule.domain,
                  domain_config_id=schedule.domain_config_id, status="success", started_at=slot, scheduled_for=slot)
    JobExecution.objects.create(**common)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobExecution.objects.create(**common)
    # Manual runs are outside the one-per-slot rule.
    JobExecution.objects.create(**(common | {"trigger": "manual"}))
    JobExecution.objects.create(**(common | {"trigger": "manual"}))
    assert JobExecution.objects.count() == 3
