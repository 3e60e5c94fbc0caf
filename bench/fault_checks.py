"""Judging a fault-harness run from the database and the runs file.

Every slot of every schedule in the evaluation window must have exactly one
outcome. A slot is *run* (success/failed), *abandoned* (its instance was
killed or frozen mid-run: it ran at most once, so it counts as run-once) or
*not run* (missed, skipped, interrupted, or no row at all). A not-run slot is
only acceptable where a fault the harness injected explains it:

- PostgreSQL outage: missed / skipped / absent, for slots in
  [outage start - margin, outage end + grace]. While the database is away no
  claim can be inserted; claims are retried until the slot's grace time ends.
- Anywhere, verified in the data, counted separately and limited to 1% of
  the expected slots: skipped for an overlap (another run of the schedule had
  started before the skip was decided and completed after it, so it held the
  lock), and missed as coalesced (the slot reached a worker only after the
  schedule's next slot was due). Both are the runtime's rules (one run of a
  schedule at a time; JOB_COALESCE runs the latest slot, not a backlog).
- SIGKILL / SIGSTOP of an instance: skipped, for slots up to lock timeout +
  one interval after the fault. The victim's Redis lock and fresh heartbeat
  make the next slot of that schedule look like an overlap until either
  expires.

A duplicate is a slot with more than one history row or more than one line
in the runs file (the runner appends one line per real run), whatever the
history says.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from history.models import ExecutionStatus, JobExecution
from schedules.timing.triggers import next_fire_times

RUN = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED)
NOT_RUN = (ExecutionStatus.MISSED, ExecutionStatus.SKIPPED, ExecutionStatus.INTERRUPTED, "absent")


@dataclass
class Fault:
    """One injected fault: what, when (UTC wall clock of the harness)."""

    kind: str  # kill | pause | redis | postgres | clock
    started: datetime
    ended: datetime
    detail: str = ""

    def explains(self, status: str, slot: datetime, *, grace: float, lock_timeout: float, interval: float,
                 margin: float) -> bool:
        before = timedelta(seconds=margin)
        if self.kind == "postgres":
            return self.started - before <= slot <= self.ended + timedelta(seconds=grace)
        if self.kind in ("kill", "pause") and status in (ExecutionStatus.SKIPPED, ExecutionStatus.ABANDONED):
            after = timedelta(seconds=lock_timeout + interval + margin)
            return self.started - before <= slot <= self.ended + after
        return False


@dataclass
class Verdict:
    expected: int = 0
    run: int = 0
    abandoned: int = 0
    not_run: Counter = field(default_factory=Counter)
    explained_misses: int = 0
    overlap_skips: int = 0  # skipped while the previous run was still going (checked in the data)
    coalesced: int = 0  # missed because the next slot was already due when it reached a worker (checked)
    unexplained: list = field(default_factory=list)  # (schedule, slot, status, "instance: reason")
    duplicates: list = field(default_factory=list)  # (schedule, slot, rows, runs)
    runs_without_claim: list = field(default_factory=list)
    # Run once by its first delivery (an instance stalled past its heartbeat,
    # then finished the scan); the row was delivered again meanwhile and that
    # delivery was skipped for an overlap, so the row says skipped. The slot ran
    # exactly once; the recorded status is the second delivery's.
    redelivered_skips: list = field(default_factory=list)
    unexplained_abandoned: int = 0
    left_running: int = 0
    exit_codes: dict = field(default_factory=dict)
    per_fault: list = field(default_factory=list)

    @property
    def missed(self) -> int:
        return sum(self.not_run.values())

    @property
    def bad_exit_codes(self) -> dict:
        return {name: code for name, code in self.exit_codes.items() if code != 0}

    @property
    def policy_outcomes_too_many(self) -> bool:
        """Verified overlaps and coalesced slots are the rules working, but a
        runtime that fell behind all the time would also produce them."""
        return self.overlap_skips + self.coalesced > 0.01 * self.expected

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.unexplained or self.runs_without_claim or self.left_running
                    or self.bad_exit_codes or self.policy_outcomes_too_many)


def slots_between(schedule, start: datetime, end: datetime) -> list[datetime]:
    """The trigger's slots in (start, end]: the same arithmetic the instances use."""
    count = int((end - start).total_seconds()) + 2  # intervals are >= 1 s
    return [s for s in next_fire_times(schedule.trigger, count=count, now=start) if s <= end]


def evaluate(*, schedules, start: datetime, end: datetime, runs: list[tuple[str, str, str]], faults: list[Fault],
             exit_codes: dict, grace: float, lock_timeout: float, interval: float, margin: float = 2.0) -> Verdict:
    verdict = Verdict(exit_codes=dict(exit_codes))
    rows: dict[tuple, list[str]] = {}
    reasons: dict[tuple, str] = {}
    spans: dict[str, list] = {}  # schedule -> (started, completed) of every run
    checked_at: dict[tuple, datetime] = {}  # when a skip was decided
    decided_at: dict[tuple, datetime] = {}  # when a miss was recorded
    deliveries: dict[tuple, int] = {}
    for sid, slot, status, instance, message, began, done, taken in JobExecution.objects.values_list(
            "schedule_id", "scheduled_for", "status", "instance_id", "error_message", "started_at", "completed_at",
            "deliveries"):
        if slot is not None:
            rows.setdefault((str(sid), slot), []).append(status)
            reasons[(str(sid), slot)] = f"{instance}: {message}"
            deliveries[(str(sid), slot)] = taken
        if status in (*RUN, ExecutionStatus.ABANDONED, ExecutionStatus.INTERRUPTED):
            spans.setdefault(str(sid), []).append((began, done))
        elif status == ExecutionStatus.SKIPPED:
            checked_at[(str(sid), slot)] = began
        elif status == ExecutionStatus.MISSED:
            decided_at[(str(sid), slot)] = began
    run_counts = Counter((sid, datetime.fromisoformat(slot)) for sid, slot, _ in runs if slot != "manual")
    verdict.left_running = JobExecution.objects.filter(status=ExecutionStatus.RUNNING).count()
    kinds = dict(grace=grace, lock_timeout=lock_timeout, interval=interval, margin=margin)
    outcomes: list[tuple[datetime, str]] = []
    for schedule in schedules:
        sid = str(schedule.schedule_id)
        for slot in slots_between(schedule, start, end):
            verdict.expected += 1
            statuses = rows.get((sid, slot), [])
            ran = run_counts.get((sid, slot), 0)
            status = statuses[0] if len(statuses) == 1 else ("absent" if not statuses else "duplicate")
            outcomes.append((slot, status))
            if len(statuses) > 1 or ran > 1:
                verdict.duplicates.append((schedule.domain, slot.isoformat(), statuses, ran))
            if (ran == 1 and status == ExecutionStatus.SKIPPED and deliveries.get((sid, slot), 0) > 1
                    and any(f.kind in ("kill", "pause") for f in faults)):
                verdict.redelivered_skips.append((schedule.domain, slot.isoformat(), reasons.get((sid, slot))))
                verdict.run += 1
                continue
            if ran and status not in (*RUN, ExecutionStatus.ABANDONED, "duplicate"):
                verdict.runs_without_claim.append((schedule.domain, slot.isoformat(), status, ran,
                                                   deliveries.get((sid, slot)), reasons.get((sid, slot))))
            if status in RUN:
                verdict.run += 1
            elif status == ExecutionStatus.ABANDONED:
                verdict.abandoned += 1
                if not any(f.explains(status, slot, **kinds) for f in faults):
                    verdict.unexplained_abandoned += 1
            elif status in NOT_RUN:
                verdict.not_run[status] += 1
                if any(f.explains(status, slot, **kinds) for f in faults):
                    verdict.explained_misses += 1
                elif _verified_overlap(sid, slot, status, spans=spans, checked_at=checked_at):
                    verdict.explained_misses += 1
                    verdict.overlap_skips += 1
                elif _verified_coalesce(sid, slot, status, reason=reasons.get((sid, slot), ""),
                                        decided=decided_at.get((sid, slot)), schedule=schedule):
                    verdict.explained_misses += 1
                    verdict.coalesced += 1
                else:
                    moment = checked_at.get((sid, slot))
                    near = [(b.strftime("%H:%M:%S.%f")[:-3], d.strftime("%H:%M:%S.%f")[:-3] if d else None)
                            for b, d in spans.get(sid, ()) if moment and abs((b - moment).total_seconds()) < 6]
                    verdict.unexplained.append((schedule.domain, slot.isoformat(), status,
                                                reasons.get((sid, slot), ""),
                                                f"decided {moment:%H:%M:%S.%f}" if moment else "", near))
    verdict.per_fault = _per_fault(faults, outcomes, end)
    return verdict


def _verified_overlap(sid, slot, status, *, spans, checked_at) -> bool:
    """A slot skipped because another run of the schedule held its lock,
    checked against the data: some run of the same schedule had started
    before the skip was decided and completed after it. One run of a schedule
    at a time is the rule working as specified, not a lost slot: with scans of
    up to 1.5 s every 2 s, any start delay over 0.5 s overlaps (after an
    outage, a restart, or under load)."""
    if status != ExecutionStatus.SKIPPED:
        return False
    moment = checked_at.get((sid, slot))
    return moment is not None and any(
        began < moment and (done is None or done > moment) for began, done in spans.get(sid, ()))


def _verified_coalesce(sid, slot, status, *, reason: str, decided, schedule) -> bool:
    """A slot recorded missed because it reached a worker only after the
    schedule's next slot was due (JOB_COALESCE: run the latest slot, not a
    backlog), checked against the data: the miss was recorded after that next
    slot's time."""
    if status != ExecutionStatus.MISSED or "coalesced" not in reason or decided is None:
        return False
    later = schedule.trigger.get_next_fire_time(slot, slot + timedelta(microseconds=1))
    return later is not None and decided >= later


def _per_fault(faults: list[Fault], outcomes: list[tuple[datetime, str]], end: datetime) -> list[dict]:
    """For each fault: what happened to slots from its start to the next
    fault's start. ``recovered`` = slots after the fault ended that ran
    successfully; ``settled`` = seconds after the fault ended until the last
    slot of that stretch that did not run normally (0: none)."""
    ordered = sorted(faults, key=lambda f: f.started)
    report = []
    for n, fault in enumerate(ordered):
        until = ordered[n + 1].started if n + 1 < len(ordered) else end
        stretch = [(slot, status) for slot, status in outcomes if fault.started <= slot < until]
        after = [(slot, status) for slot, status in stretch if slot > fault.ended]
        disturbed = [slot for slot, status in stretch if status != ExecutionStatus.SUCCESS]
        settled = max(((max(disturbed) - fault.ended).total_seconds() if disturbed else 0.0), 0.0)
        report.append({
            "fault": fault.kind, "detail": fault.detail, "at": fault.started, "lasted": (fault.ended - fault.started),
            "slots": len(stretch), "abandoned": sum(s == ExecutionStatus.ABANDONED for _, s in stretch),
            "not_run": sum(s in NOT_RUN for _, s in stretch),
            "recovered": sum(s == ExecutionStatus.SUCCESS for _, s in after), "after": len(after),
            "settled": settled,
        })
    return report


def summary(verdict: Verdict, *, start: datetime, end: datetime) -> str:
    v = verdict
    not_run = ", ".join(f"{k} {n}" for k, n in sorted(v.not_run.items())) or "none"
    lines = [
        f"window {start:%H:%M:%S.%f}"[:-3] + f" - {end:%H:%M:%S.%f}"[:-3] + " UTC",
        "",
        "| slots expected | run | duplicated | missed (explained / unexplained) | abandoned | recovered |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {v.expected} | {v.run} | {len(v.duplicates)} | {v.missed} ({v.explained_misses} / {len(v.unexplained)}) "
        f"| {v.abandoned} | {sum(f['recovered'] for f in v.per_fault)} |",
        "",
        f"not run by status: {not_run}; explained outside fault windows by the data: skipped for an overlap "
        f"{v.overlap_skips}, coalesced (next slot already due) {v.coalesced} (limit 1% of expected: "
        f"{'exceeded' if v.policy_outcomes_too_many else 'ok'}); abandoned outside any fault window: "
        f"{v.unexplained_abandoned}; "
        f"runs without a claim: {len(v.runs_without_claim)}; run by a first delivery whose redelivery was skipped: "
        f"{len(v.redelivered_skips)}; left running: {v.left_running}",
        "exit codes on SIGTERM: " + ", ".join(f"{k}={c}" for k, c in v.exit_codes.items()),
        "",
        "| fault | at | lasted | slots until next fault | abandoned | not run | recovered (after it ended) | settled after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in v.per_fault:
        lines.append(
            f"| {f['fault']} {f['detail']} | {f['at']:%H:%M:%S} | {f['lasted'].total_seconds():.1f} s | {f['slots']} "
            f"| {f['abandoned']} | {f['not_run']} | {f['recovered']} / {f['after']} | {f['settled']:.1f} s |"
        )
    for title, items in (("DUPLICATES", v.duplicates), ("UNEXPLAINED MISSES", v.unexplained),
                         ("RUNS WITHOUT CLAIM", v.runs_without_claim)):
        if items:
            lines.append(f"{title} ({len(items)}): {items[:10]}")
    lines.append("RESULT: " + ("PASS" if v.ok else "FAIL"))
    return "\n".join(lines)
