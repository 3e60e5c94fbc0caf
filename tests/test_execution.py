"""One slot's run, in-process, against the real test PostgreSQL and Redis:
fired into the queue, taken, run, recorded."""

import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis
from django_redis import get_redis_connection

from history import queue as queue_store
from history import services as history
from history.models import JobExecution
from schedules.runtime.claim import fire_slot
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.context import RunContext
from schedules.runtime.locks import RedisScheduleLocks, lock_key
from schedules.runtime.outages import OutageLog
from schedules.runtime.specs import load_spec
from schedules.runtime.take import run_taken
from schedules.scans.request import ScanResult
from tests.history_factories import claim_one

pytestmark = pytest.mark.django_db(transaction=True)
SLOT = datetime(2026, 5, 1, 2, 0, tzinfo=timezone.utc)


def slot_clock():
    """The runtime's clock, starting just after SLOT and ticking."""
    began = time.monotonic()
    return lambda: SLOT + timedelta(seconds=0.2 + time.monotonic() - began)


def context(runner, *, locks=None, instance_id="test-instance"):
    # lock_timeout 6: heartbeats every 2 s, a run is stale after 3 s without one.
    config = RuntimeConfig.from_settings(instance_id=instance_id, misfire_grace=2, coalesce=True, retry_backoff=0,
                                         lock_timeout=6)
    return RunContext(
        config=config,
        clock=slot_clock(),
        locks=locks or RedisScheduleLocks(client=get_redis_connection("default"), timeout=5),
        runner=runner,
        stop=threading.Event(),
        redis_outage=OutageLog("Redis"),
        db_outage=OutageLog("PostgreSQL"),
    )


def run_slot(ctx, spec, slot, **fire):
    """Fire the slot, then take it from the queue and run it as a worker would."""
    fired = fire_slot(ctx, spec, slot, **fire)
    if fired != "queued":
        return fired
    rows = queue_store.take_queued(instance_id=ctx.instance_id, limit=1, now=ctx.clock())
    assert [row["scheduled_for"] for row in rows] == [slot]
    return run_taken(ctx, rows[0], spec_of=lambda schedule_id: spec)


def ok_runner(request):
    return ScanResult(scan_id="scan-42", metadata={"pages": 1})


def test_a_run_records_success_scan_id_and_updates_the_schedule(make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"minutes": 5})
    ctx = context(ok_runner)
    status = run_slot(ctx, load_spec(schedule.schedule_id), SLOT)
    assert status == "success"
    assert ctx.bookkeeping.flush() == 1
    execution = JobExecution.objects.get()
    assert (execution.status, execution.scan_id, execution.scheduled_for) == ("success", "scan-42", SLOT)
    assert execution.metadata["instance_id"] == "test-instance" and execution.metadata["pages"] == 1
    assert execution.duration_seconds is not None and execution.completed_at is not None
    schedule.refresh_from_db()
    assert schedule.last_status == "success" and schedule.last_run is not None
    assert schedule.next_run > schedule.last_run - timedelta(seconds=1)


def test_the_second_claim_of_a_slot_loses_quietly(make_schedule):
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    log_path = os.path.join(os.environ["TEST_SERVICES_DIR"], "pg", "log")
    log_before = os.path.getsize(log_path)
    assert run_slot(context(ok_runner, instance_id="a"), spec, SLOT) == "success"
    assert run_slot(context(ok_runner, instance_id="b"), spec, SLOT) is None
    assert JobExecution.objects.count() == 1
    with open(log_path) as log:
        log.seek(log_before)
        assert "duplicate key" not in log.read(), "losing claims must not put errors in PostgreSQL's log"


def test_a_failing_scan_is_retried_then_recorded_with_its_error(make_schedule):
    schedule = make_schedule(scan_settings={"maxRetries": 2})
    calls = []

    def flaky(request):
        calls.append(request.execution_id)
        raise ConnectionError("scan API refused")

    assert run_slot(context(flaky), load_spec(schedule.schedule_id), SLOT) == "failed"
    execution = JobExecution.objects.get()
    assert len(calls) == 3
    assert execution.error_message == "ConnectionError: scan API refused"
    assert execution.error_details["type"] == "builtins.ConnectionError"
    assert "Traceback" in execution.error_details["traceback"]
    assert [a["attempt"] for a in execution.metadata["attempts"]] == [1, 2, 3]


def test_a_scan_that_recovers_on_retry_succeeds(make_schedule):
    schedule = make_schedule(scan_settings={"maxRetries": 3})
    calls = []

    def second_time_lucky(request):
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("slow")
        return {"scan_id": "s-2"}

    assert run_slot(context(second_time_lucky), load_spec(schedule.schedule_id), SLOT) == "success"
    execution = JobExecution.objects.get()
    assert execution.scan_id == "s-2" and len(execution.metadata["attempts"]) == 2


def test_a_slot_is_skipped_while_the_previous_run_holds_the_lock(make_schedule):
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    previous = claim_one(schedule_id=spec.schedule_id, domain=spec.domain,
                                  domain_config_id=spec.domain_config_id, scheduled_for=SLOT - timedelta(days=1),
                                  instance_id="other", status="running")
    held = ctx.locks.acquire(spec.schedule_id)
    assert previous and held
    assert run_slot(ctx, spec, SLOT) == "skipped"
    skipped = JobExecution.objects.get(scheduled_for=SLOT)
    assert "is held: a previous run is still running" in skipped.error_message
    assert skipped.metadata["reason"] == skipped.error_message


def test_a_stale_lock_of_a_dead_run_is_broken(make_schedule):
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    ctx.locks.acquire(spec.schedule_id)  # held, but no live run in the database
    assert run_slot(ctx, spec, SLOT) == "success"


def test_losing_the_lock_mid_run_is_recorded(make_schedule, redis_client):
    schedule = make_schedule()

    def runner_whose_lock_vanishes(request):
        redis_client.delete(lock_key(request.schedule_id))
        return ScanResult()

    assert run_slot(context(runner_whose_lock_vanishes), load_spec(schedule.schedule_id), SLOT) == "success"
    assert "no longer ours" in JobExecution.objects.get().metadata["lock_lost"]


def test_with_redis_down_runs_go_on_guarded_by_the_database(make_schedule, caplog):
    # Built as django-redis builds its client, pointed at a port nobody serves.
    dead = redis.Redis(connection_pool=redis.ConnectionPool.from_url("redis://127.0.0.1:1/0", socket_timeout=0.2))
    ctx = context(ok_runner, locks=RedisScheduleLocks(client=dead, timeout=5))
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    assert run_slot(ctx, spec, SLOT) == "success"
    assert run_slot(ctx, spec, SLOT + timedelta(hours=1)) == "success"
    assert JobExecution.objects.get(scheduled_for=SLOT).metadata["lock"] == "none"
    assert caplog.text.count("Redis unavailable") == 1, "one warning per outage, not per run"
    # An overlapping run is still refused, by the running row in the database.
    claim_one(schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                       scheduled_for=SLOT - timedelta(days=1), instance_id="other", status="running")
    assert run_slot(ctx, spec, SLOT + timedelta(hours=2)) == "skipped"


def test_a_dead_instances_runs_go_back_to_the_queue_until_out_of_deliveries(make_schedule):
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    kwargs = dict(schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                  instance_id="gone")
    stale = claim_one(scheduled_for=SLOT, status="running", **kwargs)
    fresh = claim_one(scheduled_for=SLOT + timedelta(hours=1), status="running", **kwargs)
    queued_later = claim_one(scheduled_for=SLOT + timedelta(hours=2), **{**kwargs, "instance_id": "firer"})

    def beat_stops(execution_id):
        JobExecution.objects.filter(execution_id=execution_id).update(
            heartbeat_at=datetime.now(timezone.utc) - timedelta(minutes=5))

    beat_stops(stale)
    assert queue_store.rescue_orphaned(stale_after=timedelta(seconds=30), max_deliveries=2) == (1, 0)
    row = JobExecution.objects.get(execution_id=stale)
    assert (row.status, row.instance_id, row.deliveries) == ("queued", "", 1)
    assert row.started_at == row.created_at, "back at its old place in the queue"
    # The dead instance's finish (it was only hung) no longer counts.
    assert history.finish_execution(execution_id=stale, status="success", started_at=SLOT, instance_id="gone") is False
    # Its old place: ahead of the row queued after it was claimed.
    [taken] = queue_store.take_queued(instance_id="rescuer", limit=1)
    assert taken["execution_id"] == stale and JobExecution.objects.get(execution_id=stale).deliveries == 2
    assert JobExecution.objects.get(execution_id=queued_later).status == "queued"
    beat_stops(stale)
    assert queue_store.rescue_orphaned(stale_after=timedelta(seconds=30), max_deliveries=2) == (0, 1)
    row = JobExecution.objects.get(execution_id=stale)
    assert row.status == "abandoned" and "2 time(s)" in row.error_message
    # Only the instance running a row marks it interrupted or finishes it.
    assert queue_store.mark_interrupted(execution_ids=[fresh], instance_id="other", reason="shutdown") == 0
    assert queue_store.mark_interrupted(execution_ids=[fresh, uuid.uuid4()], instance_id="gone", reason="shutdown") == 1
    assert JobExecution.objects.get(execution_id=fresh).status == "interrupted"
    assert history.finish_execution(execution_id=stale, status="success", started_at=SLOT,
                                    instance_id="other") is False


def test_the_clock_skew_to_the_database_is_measured():
    import time_machine

    from schedules.instances import database_clock_skew

    assert abs(database_clock_skew()) < 0.5
    with time_machine.travel(timedelta(seconds=3), tick=True):
        assert 2.5 < database_clock_skew() < 3.5


def test_a_schedule_stored_with_an_invalid_config_is_not_loaded(make_schedule, caplog):
    from schedules.models import Schedule
    from schedules.runtime.specs import iter_specs

    good, bad = make_schedule(), make_schedule()
    Schedule.objects.filter(pk=bad.pk).update(time_config={"hour": 99, "minute": 0})
    assert [spec.schedule_id for spec in iter_specs()] == [good.schedule_id]
    assert f"Schedule {bad.schedule_id} is not loaded: time_config.hour: 99 is out of range" in caplog.text
    assert load_spec(bad.schedule_id) is None


def test_a_slot_fired_later_than_the_grace_time_is_recorded_missed(make_schedule):
    schedule = make_schedule()
    ctx = context(ok_runner)
    ctx.clock = lambda: SLOT + timedelta(seconds=ctx.config.misfire_grace + 1)
    assert run_slot(ctx, load_spec(schedule.schedule_id), SLOT) == "missed"
    execution = JobExecution.objects.get()
    assert execution.status == "missed" and "later than the grace time" in execution.error_message


def test_a_late_slot_whose_next_slot_is_already_due_is_coalesced_not_run(make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"seconds": 1})
    ctx = context(ok_runner)
    ctx.clock = lambda: SLOT + timedelta(seconds=1.5)
    assert run_slot(ctx, load_spec(schedule.schedule_id), SLOT) == "missed"
    assert "coalesced: the schedule's later slot" in JobExecution.objects.get().error_message
    assert run_slot(ctx, load_spec(schedule.schedule_id), SLOT + timedelta(seconds=1)) == "success"


def test_the_runner_gets_profile_defaults_overlaid_by_the_schedules_own_settings(make_schedule):
    """The snapshot the runtime loads: every profile setting, then the
    schedule's own values on top, unknown upstream keys passed through."""
    from schedules.models import ScanProfile

    profile = ScanProfile.objects.create(name="deep", max_pages=7, scan_depth=2, max_retries=0,
                                         allow_deep_scan=True, custom_pages=["/privacy"], accept_selector="#ok")
    schedule = make_schedule(frequency="interval", time_config={"minutes": 5}, profile=profile,
                             scan_settings={"maxPages": 99, "customPages": ["/cookies"], "region": "eu"})
    received = []
    run_slot(context(lambda request: received.append(request.scan_settings) or ok_runner(request)),
             load_spec(schedule.schedule_id), SLOT)
    assert received == [{"maxPages": 99, "scanDepth": 2, "maxRetries": 0, "allow_deep_scan": True,
                         "customPages": ["/cookies"], "accept_selector": "#ok", "region": "eu"}]
    bare = make_schedule(frequency="interval", time_config={"minutes": 5}, scan_settings={"maxPages": 3})
    assert load_spec(bare.schedule_id).scan_settings == {"maxPages": 3}


