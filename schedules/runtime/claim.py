"""Claim: one INSERT for the slots fired together, unique on (schedule, scheduled_for), picks the instance.
With a free worker here a row is inserted already taken; past JOB_MISFIRE_GRACE_TIME a slot is missed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError
from django_apscheduler.util import close_old_connections as with_fresh_connections

from history import queue as queue_store
from history.models import ExecutionStatus, ExecutionTrigger
from scanner_project import metrics
from schedules.runtime import due
from schedules.runtime.bookkeeping import record_not_run
from schedules.runtime.context import RunContext, log_extra
from schedules.runtime.outages import repair_connections
from schedules.runtime.queue import enqueued
from schedules.runtime.specs import JobSpec, load_specs

logger = logging.getLogger("schedules.runtime")

CLAIM_RETRY_FIRST = 0.25
CLAIM_RETRY_MAX = 5.0
BATCH_MAX = 500


@dataclass(frozen=True)
class FiredSlot:
    spec: JobSpec
    scheduled_for: datetime
    fired_at: datetime | None = None  # when the scheduler fired it (default: now), for the grace time


def fire_slot(ctx: RunContext, spec: JobSpec, scheduled_for: datetime, *,
              fired_at: datetime | None = None) -> str | None:
    """Fire one slot (see fire_slots)."""
    return fire_slots(ctx, [FiredSlot(spec, scheduled_for, fired_at)])[0]


def fire_slots(ctx: RunContext, slots: list[FiredSlot]) -> list[str | None]:
    """Claim the slots in one INSERT, each as ``queued`` for any instance's
    workers or straight into a free worker of this instance (``running``,
    taken at birth: no take, one write fewer). Returns, per slot, "running" or
    "queued" when this instance won its claim, "missed", or None (another
    instance claimed it)."""
    outcome: list[str | None] = [None] * len(slots)
    wanted: list[int] = []
    seen: set[tuple] = set()
    for n, slot in enumerate(slots):
        if _key(slot) in seen:
            continue  # fired twice (a second look as the first claim came): claimed once
        seen.add(_key(slot))
        reason = _too_late(ctx, slot)
        if reason:
            _record_too_late(ctx, slot, reason)
            outcome[n] = ExecutionStatus.MISSED
        else:
            wanted.append(n)
    if not wanted:
        return outcome
    seats = ctx.seats.reserve(len(wanted)) if ctx.seats is not None else 0
    taken_at_birth = set(wanted[:seats])
    now = ctx.clock()
    won: dict[tuple, uuid.UUID] | None = None
    try:
        won = _claim_with_retry(ctx, [(slots[n], n in taken_at_birth) for n in wanted], now=now)
    finally:
        if seats:  # the workers reserved for claims that were lost
            ctx.seats.unreserve(sum(1 for n in taken_at_birth if won is None or _key(slots[n]) not in won))
    if won is None:
        for n in wanted:
            logger.warning("Slot %s of %s missed: database unavailable past its grace time", slots[n].scheduled_for,
                           slots[n].spec.job_id, **log_extra(ctx, slots[n].spec, scheduled_for=slots[n].scheduled_for))
            outcome[n] = ExecutionStatus.MISSED
        return outcome
    claimed: list[tuple[JobSpec, datetime]] = []
    # The runs that start here at once read their schedules' settings in one
    # query (if it fails, each run reads its own).
    try:
        running_specs = load_specs([slots[n].spec.schedule_id for n in taken_at_birth if _key(slots[n]) in won])
    except DatabaseError:
        running_specs = None
    for n in wanted:
        slot = slots[n]
        execution_id = won.get(_key(slot))
        if execution_id is None:
            metrics.CLAIM_LOSSES.inc()
            logger.debug("Slot %s of %s claimed by another instance", slot.scheduled_for, slot.spec.job_id)
            continue
        running = n in taken_at_birth
        claimed.append((slot.spec, slot.scheduled_for))
        if running:
            row = {"spec": running_specs.get(slot.spec.schedule_id)} if running_specs is not None else {}
            ctx.seats.start({**row, "execution_id": execution_id, "schedule_id": slot.spec.schedule_id,
                             "scheduled_for": slot.scheduled_for, "trigger": ExecutionTrigger.SCHEDULED,
                             "metadata": {"fired_by": ctx.instance_id}, "started_at": now, "created_at": now})
        outcome[n] = ExecutionStatus.RUNNING if running else ExecutionStatus.QUEUED
    enqueued(ctx, claimed, wake=ExecutionStatus.QUEUED in outcome)
    return outcome


def _key(slot: FiredSlot) -> tuple:
    return slot.spec.schedule_id, slot.scheduled_for


def _claim_with_retry(ctx: RunContext, slots: list[tuple[FiredSlot, bool]],
                      now: datetime) -> dict[tuple, uuid.UUID] | None:
    """The claims of (slot, taken at birth), retried with backoff while
    PostgreSQL is away, until the earliest slot's grace time runs out.
    {key: id} of the slots won, or None (gave up)."""
    give_up_at = min(s.scheduled_for for s, _ in slots) + timedelta(seconds=ctx.config.misfire_grace)
    wait = CLAIM_RETRY_FIRST
    rows = [{"schedule_id": s.spec.schedule_id, "domain": s.spec.domain, "domain_config_id": s.spec.domain_config_id,
             "scheduled_for": s.scheduled_for, "metadata": {"fired_by": ctx.instance_id},
             "status": ExecutionStatus.RUNNING if taken else ExecutionStatus.QUEUED} for s, taken in slots]
    while True:
        try:
            won = queue_store.claim_slots(slots=rows, instance_id=ctx.instance_id, started_at=now)
            ctx.db_outage.up()
            return won
        except DatabaseError as exc:
            ctx.db_outage.down(exc, "slots are retried until their grace time runs out")
            repair_connections()
            if ctx.clock() + timedelta(seconds=wait) > give_up_at or ctx.stop.wait(wait):
                return None
            wait = min(wait * 2, CLAIM_RETRY_MAX)


def _too_late(ctx: RunContext, slot: FiredSlot) -> str:
    """Why the slot is not claimed (due.verdict), or "". Fired this late: every
    instance was down, or a second look came after an outage."""
    now = ctx.clock()
    later = due.later_slot_of(slot.spec.trigger, slot.scheduled_for) if ctx.config.coalesce else None
    # A later slot is already due by the clock that fires it. An instance
    # whose clock is behind the database's fires each of its shards' slots
    # late by the same amount, and must not fold every one into the next.
    due_by = min(now, ctx.wall_clock())
    return due.verdict(slot=slot.scheduled_for, fired_at=slot.fired_at or now, now=due_by,
                       grace=ctx.config.misfire_grace, coalesce=ctx.config.coalesce, later_slot=later).reason


def _record_too_late(ctx: RunContext, slot: FiredSlot, reason: str) -> None:
    # Grace is about firing: a slot that was queued in time never expires.
    spec = slot.spec
    record_not_run(schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                   scheduled_for=slot.scheduled_for, instance_id=ctx.instance_id, reason=reason,
                   outage=ctx.db_outage)


class SlotClaimer:
    """The slots this instance fires, claimed by one thread in batches:
    a herd of 10,000 slots due at 02:00 is a few INSERTs, not 10,000. The
    firing threads only hand their slots over; a slot still waiting here when
    the instance stops is not claimed (another instance, or the start-up
    catch-up, accounts for it)."""

    def __init__(self, *, ctx: RunContext, batch_max: int = BATCH_MAX):
        self.ctx = ctx
        self.batch_max = batch_max
        self._pending: list[FiredSlot] = []
        self._mutex = threading.Lock()
        self._wake = threading.Event()

    def submit(self, slot: FiredSlot) -> None:
        with self._mutex:
            self._pending.append(slot)
        self._wake.set()

    def claim_pending(self) -> int:
        """One pass: claim up to batch_max waiting slots."""
        with self._mutex:
            batch, self._pending = self._pending[:self.batch_max], self._pending[self.batch_max:]
            if self._pending:
                self._wake.set()
        if batch and not self.ctx.stop.is_set():
            with_fresh_connections(fire_slots)(self.ctx, batch)
        return len(batch)

    def run_until_stopped(self, one_pass) -> None:
        """The claimer loop; ``one_pass`` (loops.Loops.one_pass) keeps a
        failing pass from ending it."""
        while not self.ctx.stop.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            one_pass("slot-claimer", self.claim_pending)
