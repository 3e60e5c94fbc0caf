"""The slot queue, in-process, against the real test PostgreSQL: a queued slot
waits as long as it must, coalesces, and yields to "Run now"."""

import dataclasses
import threading
from datetime import timedelta

import pytest

from history import queue as queue_store
from history.models import JobExecution
from schedules.runtime.claim import fire_slot
from schedules.runtime.specs import load_spec
from schedules.runtime.take import run_taken
from tests.test_execution import SLOT, context, ok_runner

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_queued_slot_is_never_missed_for_waiting(make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"hours": 1})
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    assert fire_slot(ctx, spec, SLOT) == "queued"
    assert ctx.queue_wake.is_set(), "queuing a slot wakes this instance's taker"
    # Far past the grace time (2 s) before a worker is free.
    ctx.clock = lambda: SLOT + timedelta(minutes=10)
    rows = queue_store.take_queued(instance_id=ctx.instance_id, limit=5)
    assert len(rows) == 1
    assert run_taken(ctx, rows[0], spec_of=lambda sid: spec) == "success"
    assert JobExecution.objects.get().status == "success"


def test_a_backlog_coalesces_to_one_queued_slot_per_schedule(make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"seconds": 1})
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    for n in range(5):
        ctx.clock = lambda n=n: SLOT + timedelta(seconds=n, milliseconds=100)
        assert fire_slot(ctx, spec, SLOT + timedelta(seconds=n)) == "queued"
    rows = dict(JobExecution.objects.values_list("scheduled_for", "status"))
    assert list(rows.values()).count("queued") == 1
    assert rows[SLOT + timedelta(seconds=4)] == "queued"
    folded = JobExecution.objects.filter(status="missed")
    assert folded.count() == 4
    assert all(message.startswith("coalesced") for message in folded.values_list("error_message", flat=True))


def test_without_coalescing_every_queued_slot_runs(make_schedule):
    schedule = make_schedule(frequency="interval", time_config={"seconds": 1})
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    ctx.config = dataclasses.replace(ctx.config, coalesce=False)
    for n in range(3):
        ctx.clock = lambda n=n: SLOT + timedelta(seconds=n, milliseconds=100)
        fire_slot(ctx, spec, SLOT + timedelta(seconds=n))
    assert JobExecution.objects.filter(status="queued").count() == 3


def test_run_now_goes_ahead_of_the_queue(make_schedule):
    queued = [make_schedule() for _ in range(3)]
    ctx = context(ok_runner)
    for schedule in queued:
        fire_slot(ctx, load_spec(schedule.schedule_id), SLOT)
    urgent = make_schedule()
    queue_store.queue_manual_run(schedule_id=urgent.schedule_id, domain=urgent.domain,
                             domain_config_id=urgent.domain_config_id, requested_by="admin")
    first = queue_store.take_queued(instance_id="w", limit=1)
    assert [(row["schedule_id"], row["trigger"]) for row in first] == [(urgent.schedule_id, "manual")]
    rest = queue_store.take_queued(instance_id="w", limit=10)
    assert [row["trigger"] for row in rest] == ["scheduled"] * 3


def test_concurrent_takers_never_take_the_same_row(make_schedule):
    ctx = context(ok_runner)
    ctx.clock = lambda: SLOT + timedelta(seconds=0.5)  # however long 60 schedules take to create
    for _ in range(60):
        fire_slot(ctx, load_spec(make_schedule().schedule_id), SLOT)
    taken: list = []
    barrier = threading.Barrier(4)

    def taker(name):
        from django.db import connection

        barrier.wait()
        try:
            while rows := queue_store.take_queued(instance_id=name, limit=3):
                taken.extend(row["execution_id"] for row in rows)
        finally:
            connection.close()

    threads = [threading.Thread(target=taker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(taken) == 60 and len(set(taken)) == 60
    assert set(JobExecution.objects.values_list("status", flat=True)) == {"running"}


def test_a_row_taken_as_the_instance_stops_goes_back_to_the_queue(make_schedule):
    schedule = make_schedule()
    spec = load_spec(schedule.schedule_id)
    ctx = context(ok_runner)
    fire_slot(ctx, spec, SLOT)
    row = queue_store.take_queued(instance_id=ctx.instance_id, limit=1)[0]
    ctx.stop.set()
    assert run_taken(ctx, row, spec_of=lambda sid: spec) == "queued"
    assert JobExecution.objects.get().status == "queued"


def test_grace_counts_to_when_the_slot_was_fired_not_to_its_claim(make_schedule):
    spec = load_spec(make_schedule().schedule_id)
    ctx = context(ok_runner)
    ctx.clock = lambda: SLOT + timedelta(seconds=30)  # the claim, after a long wait for a firing thread
    assert fire_slot(ctx, spec, SLOT, fired_at=SLOT + timedelta(seconds=1)) == "queued"
    late = load_spec(make_schedule().schedule_id)
    assert fire_slot(ctx, late, SLOT) == "missed", "fired (now) 30 s late: past the 2 s grace"


def test_a_claim_goes_straight_to_a_free_worker_and_queues_when_none_is_free(make_schedule):
    from schedules.runtime.take import QueueTaker
    from tests.waiting import wait_until

    first, second = (load_spec(make_schedule(frequency="interval", time_config={"hours": 1}).schedule_id)
                     for _ in range(2))
    release = threading.Event()

    def held_runner(request):
        release.wait(10)
        return ok_runner(request)

    ctx = context(held_runner)
    taker = QueueTaker(ctx=ctx, max_workers=1, spec_of=lambda sid: {first.schedule_id: first,
                                                                    second.schedule_id: second}[sid])
    ctx.seats = taker
    try:
        # The one worker is free: the row is inserted taken (running, one
        # delivery), with no take, and its scan starts.
        assert fire_slot(ctx, first, SLOT) == "running"
        row = JobExecution.objects.get(schedule_id=first.schedule_id)
        assert (row.status, row.instance_id, row.deliveries) == ("running", ctx.instance_id, 1)
        assert not ctx.queue_wake.is_set(), "nothing was queued: the taker has nothing to look for"
        # The worker is busy: the next claim waits in the queue for any instance.
        assert fire_slot(ctx, second, SLOT) == "queued"
        assert taker.reserve() == 0, "claims and takes never hold more workers than there are"
        release.set()
        # The worker finishes, then takes the queued row itself.
        wait_until(lambda: set(JobExecution.objects.values_list("status", flat=True)) == {"success"}, timeout=10)
        assert JobExecution.objects.get(schedule_id=second.schedule_id).deliveries == 1
        wait_until(lambda: taker.reserve() == 1, timeout=5)
    finally:
        release.set()
        ctx.stop.set()
        taker.pool.shutdown(wait=True)


def test_a_lost_claim_gives_its_worker_back(make_schedule):
    from schedules.runtime.take import QueueTaker

    spec = load_spec(make_schedule().schedule_id)
    winner, loser = context(ok_runner, instance_id="winner"), context(ok_runner, instance_id="loser")
    loser.seats = QueueTaker(ctx=loser, max_workers=1, spec_of=lambda sid: spec)
    assert fire_slot(winner, spec, SLOT) == "queued"
    assert fire_slot(loser, spec, SLOT) is None
    assert loser.seats.reserve() == 1, "the worker reserved for the lost claim is free again"
    loser.seats.pool.shutdown(wait=True)


def test_slots_fired_together_are_claimed_in_one_insert(make_schedule):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from schedules.runtime.claim import FiredSlot, SlotClaimer

    specs = [load_spec(make_schedule().schedule_id) for _ in range(30)]
    ctx = context(ok_runner)
    claimer = SlotClaimer(ctx=ctx, batch_max=20)
    for spec in specs:
        claimer.submit(FiredSlot(spec, SLOT))
    claimer.submit(FiredSlot(specs[0], SLOT))  # fired twice: claimed once
    with CaptureQueriesContext(connection) as queries:
        assert claimer.claim_pending() == 20
        assert claimer.claim_pending() == 11
        assert claimer.claim_pending() == 0
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT INTO job_executions")]
    assert len(inserts) == 2, "one INSERT per batch, not one per slot"
    assert JobExecution.objects.filter(status="queued").count() == 30
    # Another instance firing the same slots wins none of them.
    other = context(ok_runner, instance_id="other")
    from schedules.runtime.claim import fire_slots
    assert fire_slots(other, [FiredSlot(spec, SLOT) for spec in specs[:5]]) == [None] * 5
    assert JobExecution.objects.count() == 30


def test_every_writer_of_next_run_agrees_with_the_model(make_schedule):
    from schedules.models import Schedule
    from schedules.runtime import startup
    from schedules.runtime.finish import _next_run
    from schedules.runtime.specs import iter_specs

    made = [make_schedule(frequency="cron", time_config={"expression": "30 2 * * 1-5"}, timezone="Europe/Berlin"),
            make_schedule(frequency="interval", time_config={"minutes": 7}, spread_minutes=5),
            make_schedule(frequency="monthly", time_config={"day": "last", "hour": 23, "minute": 0}),
            make_schedule(frequency="daily", time_config={"hour": 2, "minute": 0}, timezone="America/New_York")]
    now = SLOT + timedelta(minutes=3)
    specs = list(iter_specs(Schedule.objects.filter(pk__in=[s.pk for s in made])))
    at_start = startup.next_runs(specs=specs, now=now)
    for spec in specs:
        expected = Schedule.objects.get(pk=spec.schedule_id).compute_next_run(now=now)
        assert expected is not None and expected > now
        # Start-up and the bookkeeping after a run write what the row's own save() writes.
        assert at_start[spec.schedule_id] == expected == _next_run(spec, now)
