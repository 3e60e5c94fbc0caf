"""SlotExecutor: each job learns its slot; misfired and coalesced slots are recorded."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from schedules.runtime.fire import SlotExecutor

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def make(coalesce, now):
    ran, unrun = [], []
    executor = SlotExecutor(
        max_workers=1, coalesce=coalesce, clock=lambda: now,
        on_slot=lambda job, slot, fired_at: ran.append(slot),
        on_unrun_slot=lambda job, slot, reason: unrun.append((slot, reason)),
    )
    return executor, ran, unrun


JOB = SimpleNamespace(id="schedule:x", misfire_grace_time=30, kwargs={})


def test_the_slot_passed_is_the_trigger_time_not_the_clock():
    executor, ran, unrun = make(coalesce=True, now=T0 + timedelta(seconds=3))
    executor._run_slots(JOB, [T0])
    assert ran == [T0] and unrun == []


def test_coalesced_slots_are_recorded_not_dropped():
    executor, ran, unrun = make(coalesce=True, now=T0 + timedelta(seconds=3))
    executor._run_slots(JOB, [T0 - timedelta(seconds=2), T0 - timedelta(seconds=1), T0])
    assert ran == [T0]
    assert [slot for slot, _ in unrun] == [T0 - timedelta(seconds=2), T0 - timedelta(seconds=1)]
    assert all("coalesced" in reason for _, reason in unrun)


def test_without_coalescing_every_slot_runs():
    executor, ran, unrun = make(coalesce=False, now=T0)
    executor._run_slots(JOB, [T0 - timedelta(seconds=1), T0])
    assert ran == [T0 - timedelta(seconds=1), T0]


def test_a_slot_later_than_the_grace_time_is_missed():
    executor, ran, unrun = make(coalesce=True, now=T0 + timedelta(seconds=31))
    executor._run_slots(JOB, [T0])
    assert ran == [] and unrun[0][0] == T0 and "grace" in unrun[0][1]


def test_a_slot_fired_in_time_is_not_missed_for_waiting_for_a_firing_thread():
    """A herd of 10,000 slots fired at one instant waits for the firing
    threads; grace counts to when APScheduler fired it, not to the claim."""
    executor, ran, unrun = make(coalesce=True, now=T0 + timedelta(seconds=31))
    executor._run_slots(JOB, [T0], T0 + timedelta(seconds=1))
    assert ran == [T0] and unrun == []


def test_a_slot_fired_early_by_a_clock_ahead_of_the_database_waits_until_it_is_due():
    """Regression (fault harness): an instance 3 s ahead claimed each slot 3 s
    early, while the previous slot still ran elsewhere, and the run skipped
    for an overlap. The slot now waits for the database's time, and the job's
    instance count is released at once so its next fire is not refused."""
    import threading
    import time

    ran = []
    executor = SlotExecutor(max_workers=2, coalesce=True, skew=lambda: 0.6,
                            on_slot=lambda job, slot, fired_at: ran.append((slot, time.monotonic())),
                            on_unrun_slot=lambda job, slot, reason: None)
    executor.start(SimpleNamespace(_create_lock=threading.RLock), "default")
    job = SimpleNamespace(id="schedule:x", misfire_grace_time=30, max_instances=1, kwargs={})
    slot = datetime.now(timezone.utc)  # due now by this clock, in 0.6 s by the database's
    fired = time.monotonic()
    executor.submit_job(job, [slot])
    executor.submit_job(job, [slot + timedelta(seconds=0.2)])  # not refused as "max instances"
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    executor.shutdown()
    assert [s for s, _ in ran] == [slot, slot + timedelta(seconds=0.2)]
    assert ran[0][1] - fired >= 0.5


def test_slots_are_on_time_without_skew():
    executor, ran, unrun = make(coalesce=True, now=T0)
    assert executor.db_now() == T0


def test_a_batch_with_a_slot_not_yet_due_by_the_database_runs_that_slot_when_it_is():
    """A clock ahead by more than an interval hands over a slot that is due
    with one that is not (by the database's clock): the due one runs at once,
    the other when it is due, not early (claimed early, it would find its
    schedule's previous run still holding the lock)."""
    import threading
    import time

    ran = []
    executor = SlotExecutor(max_workers=2, coalesce=True, skew=lambda: 1.0,
                            on_slot=lambda job, slot, fired_at: ran.append((slot, time.monotonic())),
                            on_unrun_slot=lambda job, slot, reason: None)
    executor.start(SimpleNamespace(_create_lock=threading.RLock), "default")
    job = SimpleNamespace(id="schedule:y", misfire_grace_time=30, max_instances=1, kwargs={})
    now = datetime.now(timezone.utc)
    due, not_yet = now - timedelta(seconds=1.5), now + timedelta(seconds=0.1)  # by the database: -2.5 s, +0.9 s
    fired = time.monotonic()
    executor.submit_job(job, [due, not_yet])
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    executor.shutdown()
    assert [s for s, _ in ran] == [due, not_yet]
    assert ran[0][1] - fired < 0.5, "the due slot is not held back"
    assert ran[1][1] - fired >= 0.8, "the other waits until it is due by the database's clock"
