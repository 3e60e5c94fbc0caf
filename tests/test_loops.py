"""Background loops survive a failing pass; a loop that dies anyway is
logged, shows in the loop gauge, and stops its instance with exit status 1."""

import threading
import time

import pytest
from prometheus_client import REGISTRY

from history import queue as queue_store
from history.models import JobExecution
from schedules.runtime.claim import fire_slot
from schedules.runtime.context import RunningScan
from schedules.runtime.locks import HeldLock
from schedules.runtime.loops import Loops
from schedules.runtime.run import renew_running
from schedules.runtime.specs import load_spec
from schedules.runtime.take import QueueTaker
from tests.history_factories import claim_one
from tests.test_execution import SLOT, context, ok_runner
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def gauge(loop: str) -> float:
    return REGISTRY.get_sample_value("scanner_loop_alive", {"loop": loop})


def test_the_queue_taker_survives_a_failing_pass(make_schedule, monkeypatch, caplog):
    spec = load_spec(make_schedule().schedule_id)
    ctx = context(ok_runner)
    real_take = queue_store.take_queued
    calls = []

    def take_failing_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected failure")
        return real_take(**kwargs)

    monkeypatch.setattr(queue_store, "take_queued", take_failing_once)
    loops = Loops(stop=threading.Event(), on_death=lambda name: None, on_db_error=lambda exc: None)
    taker = QueueTaker(ctx=ctx, max_workers=2, spec_of=lambda sid: spec, poll=0.05)
    fire_slot(ctx, spec, SLOT)
    loops.start("queue-taker", lambda: taker.run_until_stopped(loops.one_pass))
    try:
        wait_until(lambda: JobExecution.objects.filter(status="success").exists(), timeout=10,
                 message=lambda: str(list(JobExecution.objects.values_list("status", flat=True))))
    finally:
        ctx.stop.set()
    assert "queue-taker: a pass failed; the loop goes on" in caplog.text and "injected failure" in caplog.text
    assert loops.threads["queue-taker"].join(5) is None and not loops.dead


def test_the_watchdog_survives_a_lock_released_while_it_renews(make_schedule):
    from schedules.runtime import SchedulerService

    service = SchedulerService(instance_id="watchdog-test", max_workers=1)
    scan = RunningScan(execution_id=claim_one(
        schedule_id=make_schedule().schedule_id, domain="d", domain_config_id="c", scheduled_for=SLOT,
        instance_id="watchdog-test", status="running"), schedule_id=None, lock=HeldLock(schedule_id=None, handle=None))
    service.ctx.running[scan.execution_id] = scan

    class LocksReleasedByTheFinisher:
        def renew(self, held):
            scan.lock = None  # the finishing worker, between the check and the warning
            held.lost, held.lost_reason = True, "released"
            return False

    service.ctx.locks = LocksReleasedByTheFinisher()
    assert service.loops.one_pass("lock-watchdog", lambda: renew_running(service.ctx))
    before = JobExecution.objects.get().heartbeat_at
    scan.lock = HeldLock(schedule_id=None, handle=None)
    time.sleep(0.01)
    assert service.loops.one_pass("lock-watchdog", lambda: renew_running(service.ctx))
    assert JobExecution.objects.get().heartbeat_at > before, "heartbeats go on"


def test_a_loop_that_dies_is_logged_gauged_and_stops_the_instance(caplog):
    from schedules.runtime import SchedulerService

    service = SchedulerService(instance_id="dying", max_workers=1)
    started = threading.Event()

    def broken_loop():
        started.set()
        raise RuntimeError("a bug outside any pass")

    service.loops.start("broken", broken_loop)
    assert service.stop_event.wait(5), "the instance is asked to stop"
    assert service.exit_code == 1
    assert gauge("broken") == 0
    assert service.loops.dead == ["broken"]
    assert "Background loop broken died" in caplog.text and "a bug outside any pass" in caplog.text


def test_a_live_loop_shows_as_alive():
    loops = Loops(stop=threading.Event(), on_death=lambda name: None, on_db_error=lambda exc: None)
    stop = threading.Event()
    loops.start("idle", lambda: stop.wait(5))
    assert gauge("idle") == 1
    stop.set()
    loops.threads["idle"].join(5)
    assert gauge("idle") == 0, "a loop that ended shows as not alive"
