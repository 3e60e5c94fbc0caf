"""SlotExecutor: each job learns its slot; misfired and coalesced slots are recorded."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from schedules.executor import SlotExecutor

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def make(coalesce, now):
    ran, unrun = [], []
    executor = SlotExecutor(
        max_workers=1, coalesce=coalesce, clock=lambda: now,
        on_slot=lambda job, slot: ran.append(slot),
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
