"""Service: one ``runscheduler`` process, wiring the steps of the slot path.

It loads the jobs, starts firing (fire.py) and taking (take.py), and its main
loop does the bookkeeping in short, interruptible steps: heartbeat, change
detection, abandoned-run sweep, sync, cleanup. Shutdown lets running scans
finish within the grace time and leaves queued slots queued.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django_apscheduler.util import close_old_connections as with_fresh_connections

from history import services as history
from history.models import ExecutionStatus
from scanner_project import metrics

from schedules import instances
from schedules.runtime.specs import JobChange, JobSpec, change_for, iter_specs
from schedules.runtime.feed import ChangeFeed
from schedules import scans
from schedules.importer.periodic import PeriodicSyncThread
from schedules.runtime import housekeeping, startup
from schedules.runtime.claim import FiredSlot, SlotClaimer, fire_slot
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.context import OutageLog, RunContext, repair_connections, skip_checkout_health_checks
from schedules.runtime.finish import sweep_abandoned
from schedules.runtime.fire import SlotExecutor
from schedules.runtime.lock import make_schedule_locks, make_slot_gate
from schedules.runtime.loops import Loops
from schedules.runtime.run import renew_running, see_pauses
from schedules.runtime.take import QueueTaker

logger = logging.getLogger("schedules.runtime")

TICK_SECONDS = 0.2


class SchedulerService:
    def __init__(self, config: RuntimeConfig | None = None, **options):
        """``options`` override single settings (RuntimeConfig field names)."""
        self.config = config = config or RuntimeConfig.from_settings(**options)
        self.fire, self.scan = config.fire, config.scan
        self.exit_code = 0
        skip_checkout_health_checks()
        self.instance_id = config.instance_id
        self.max_workers = config.max_workers
        self.heartbeat_interval = config.heartbeat_interval
        self.stop_event = threading.Event()
        self._watchdog_stop = threading.Event()
        self.started_at: datetime | None = None
        self.locks = make_schedule_locks(timeout=config.lock_timeout)
        runner = scans.get_runner()
        if config.scan:  # an instance that runs no scans needs no browser
            scans.preflight(runner)
        self.ctx = RunContext(
            instance_id=self.instance_id,
            locks=self.locks,
            runner=runner,
            stop=self.stop_event,
            misfire_grace=config.misfire_grace,
            coalesce=config.coalesce,
            retry_backoff=config.retry_backoff,
            stale_after=timedelta(seconds=self.heartbeat_interval * 1.5),
            max_deliveries=config.max_deliveries,
            pauses_max_age=timedelta(seconds=max(2.0, 4 * config.change_poll_interval)),
            redis_outage=OutageLog("Redis"),
            slot_gate=make_slot_gate(ttl=config.misfire_grace + 60),
            db_outage=OutageLog("PostgreSQL" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "database"),
        )
        self.specs: dict[uuid.UUID, JobSpec] = {}
        self.db_skew = 0.0  # seconds this clock is ahead of the database's (see fire.py)
        self._specs_mutex = threading.RLock()
        self.executor = SlotExecutor(
            max_workers=config.fire_threads, coalesce=config.coalesce,
            on_slot=self._on_slot, on_unrun_slot=self._on_unrun_slot, skew=lambda: self.db_skew,
        )
        # Runs are timed by the database's clock, the one all instances share.
        self.ctx.clock = self.executor.db_now
        self.scheduler = BackgroundScheduler(
            timezone=dt_timezone.utc,
            executors={"default": self.executor},
            job_defaults={
                # Coalescing is applied by SlotExecutor so that folded slots are recorded.
                "coalesce": False,
                "max_instances": config.max_instances,
                "misfire_grace_time": config.misfire_grace,
            },
        )
        self.scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        # A pause reaches the runtime as a change: the pause snapshot is taken
        # again at once (run.see_pauses), not only at its next poll.
        self.feed = ChangeFeed(service=self, on_changes=(lambda ids: see_pauses(self.ctx)) if config.scan else None)
        self._last_run: dict[str, float] = {}
        self.loops = Loops(on_death=self._on_loop_death, on_db_error=self._on_db_error)
        self.taker = QueueTaker(ctx=self.ctx, max_workers=self.max_workers,
                                spec_of=lambda sid: self.specs.get(sid) or self.feed.spec_of(sid)) if config.scan else None
        self.ctx.seats = self.taker
        self.claimer = SlotClaimer(ctx=self.ctx)
        self._startup_writes: threading.Thread | None = None
        self.chores = housekeeping.chores(config, clock=self.executor.db_now)

    # --- jobs -------------------------------------------------------------
    def load_all(self) -> int:
        started = time.monotonic()
        now = datetime.now(dt_timezone.utc)
        specs = list(iter_specs())
        # MemoryJobStore keeps jobs sorted by next fire time; adding them in
        # that order makes each insertion an append.
        keyed = []
        first_fire: dict[str, datetime | None] = {}  # per distinct trigger: schedules share them
        for spec in specs:
            if spec.trigger_key not in first_fire:
                first_fire[spec.trigger_key] = spec.trigger.get_next_fire_time(None, now)
            fire = first_fire[spec.trigger_key]
            if fire is not None:
                keyed.append((fire, spec))
        keyed.sort(key=lambda pair: pair[0])
        with self._specs_mutex:
            for fire, spec in keyed:
                self._add_job(spec, next_run_time=fire, replace_existing=self.config.replace_existing)
        metrics.SCHEDULES_LOADED.set(len(self.specs))
        logger.info("Loaded %d enabled schedules in %.2f s", len(self.specs), time.monotonic() - started)
        return len(self.specs)

    def _add_job(self, spec: JobSpec, *, next_run_time=None, replace_existing: bool = True) -> None:
        kwargs = {"next_run_time": next_run_time} if next_run_time is not None else {}
        self.scheduler.add_job(
            _unused_job_function,
            trigger=spec.trigger,
            id=spec.job_id,
            name=spec.domain,
            kwargs={"schedule_id": spec.schedule_id},
            replace_existing=replace_existing,
            **kwargs,
        )
        self.specs[spec.schedule_id] = spec

    def apply(self, change: JobChange, *, source: str) -> None:
        """Apply one change to the loaded jobs: O(1) whatever the job count."""
        with self._specs_mutex:
            if change.action == "remove":
                self.specs.pop(change.schedule_id, None)
                try:
                    self.scheduler.remove_job(f"schedule:{change.schedule_id}")
                except Exception:  # noqa: BLE001 - already gone (once-jobs remove themselves)
                    pass
            elif change.action == "add":
                self._add_job(change.spec)
            elif change.action == "reschedule":
                if self.scheduler.get_job(change.spec.job_id) is None:
                    self._add_job(change.spec)
                else:
                    spec = change.spec
                    self.scheduler.reschedule_job(
                        spec.job_id, trigger=spec.trigger
                    )
                    self.specs[spec.schedule_id] = spec
            elif change.action == "refresh":
                # Same trigger: only the snapshot changes; the next fire stays.
                self.specs[change.schedule_id] = change.spec
            metrics.SCHEDULES_LOADED.set(len(self.specs))
        metrics.CHANGES_APPLIED.labels(action=change.action, source=source).inc()
        logger.info("Applied %s of schedule %s (%s)", change.action, change.schedule_id, source)

    def apply_spec(self, schedule_id: uuid.UUID, wanted: JobSpec | None, *, source: str) -> bool:
        with self._specs_mutex:
            change = change_for(self.specs.get(schedule_id), wanted)
            if change is not None:
                self.apply(change, source=source)
        return change is not None

    def loaded_jobs(self) -> dict[str, dict]:
        """Each loaded job's next fire time and snapshot hash (for status reports)."""
        jobs = {}
        for job in self.scheduler.get_jobs():
            spec = self.specs.get(job.kwargs["schedule_id"])
            jobs[str(job.kwargs["schedule_id"])] = {
                "next": job.next_run_time.isoformat() if job.next_run_time else None,
                "hash": spec.content_hash if spec else None,
            }
        return jobs

    # --- slots ------------------------------------------------------------
    def _on_slot(self, job, scheduled_for: datetime, fired_at: datetime) -> None:
        if self.stop_event.is_set():
            return  # not claimed: another instance runs it
        spec = self.specs.get(job.kwargs["schedule_id"])
        if spec is not None:
            self.claimer.submit(FiredSlot(spec, scheduled_for, fired_at))

    def _on_unrun_slot(self, job, scheduled_for: datetime, reason: str, status=ExecutionStatus.MISSED) -> None:
        spec = self.specs.get(job.kwargs["schedule_id"])
        if spec is None:
            return
        logger.warning("Slot %s of %s not run: %s", scheduled_for, spec.job_id, reason)
        try:
            with_fresh_connections(history.record_unrun_slot)(
                schedule_id=spec.schedule_id, domain=spec.domain, domain_config_id=spec.domain_config_id,
                scheduled_for=scheduled_for, instance_id=self.instance_id, reason=reason, status=status,
            )
        except DatabaseError as exc:
            self.ctx.db_outage.down(exc, "unrun slots are only logged")

    def _on_max_instances(self, event) -> None:
        job = self.scheduler.get_job(event.job_id)
        if job is None:
            return
        # This instance is still busy with the schedule, but another may be
        # free: claiming the slot here as skipped would take it from them. Give
        # it the same second look as a slot lost at the Redis gate.
        spec = self.specs.get(job.kwargs["schedule_id"])
        if spec is not None:
            for run_time in event.scheduled_run_times:
                self.ctx.lost_slots.note(spec, run_time, self.executor.db_now())

    def _claim_lost_slots(self) -> None:
        grace = timedelta(seconds=self.config.misfire_grace)
        for spec, slot, fired_at in self.ctx.lost_slots.unclaimed():
            if fired_at - slot > grace:
                self._on_unrun_slot(self.scheduler.get_job(spec.job_id) or _JobRef(spec), slot,
                                    "no instance claimed it within the grace time")
                continue
            logger.info("Slot %s of %s was not claimed by any instance; claiming it here", slot, spec.job_id)
            self.executor._pool.submit(with_fresh_connections(fire_slot), self.ctx, spec, slot, gate=False,
                                       fired_at=fired_at)

    # --- lifecycle --------------------------------------------------------
    def start(self) -> None:
        self.started_at = datetime.now(dt_timezone.utc)
        logger.info(
            "Scheduler instance %s starting: %d workers, locks in %s%s", self.instance_id, self.max_workers,
            self.locks.backend,
            "" if self.locks.backend == "redis" else " (no Redis configured: single instance only)",
        )
        self._every("skew", 10.0, self._measure_skew)
        self.feed.begin()
        # A scans-only instance loads the jobs too (the snapshots its scans
        # run with) but never starts firing them.
        self.load_all()
        if self.fire:
            # Bookkeeping writes (100,000 next_run values on a first start) need
            # not hold up the firing of slots.
            fires = startup.next_runs(specs=list(self.specs.values()), now=self.executor.db_now())
            self._startup_writes = threading.Thread(
                target=with_fresh_connections(startup.write_startup_records), name="startup-writes",
                kwargs={"instance_id": self.instance_id, "fires": fires, "grace": self.config.misfire_grace},
                daemon=True)
            self._startup_writes.start()
            self.scheduler.start()
        self._last_run["diff"] = time.monotonic()  # just loaded: nothing to compare yet
        self.loops.start("lock-watchdog", self._watchdog_loop)
        if self.fire:
            self.loops.start("slot-claimer", lambda: self.claimer.run_until_stopped(self.loops.one_pass))
        if self.taker is not None:
            self.loops.start("queue-taker", lambda: self.taker.run_until_stopped(self.loops.one_pass))
        self.feed.start()
        if self.config.enable_api_sync:  # off the main loop: a slow API must not freeze heartbeats
            PeriodicSyncThread(instance_id=self.instance_id, interval=self.config.api_sync_interval,
                               stop=self.stop_event, sync=self._api_sync).start()
        if self.config.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(self.config.metrics_port, addr=self.config.metrics_addr)
        self._beat()

    def run(self) -> None:
        """start(), then the main loop until request_stop(), then shutdown()."""
        self.start()
        try:
            while not self.stop_event.is_set():
                self.tick()
                self.stop_event.wait(TICK_SECONDS)
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        self.stop_event.set()

    def tick(self) -> None:
        close_old_connections()
        self._every("beat", 1.0, self._beat)
        self._every("bookkeeping", 0.5, self.ctx.bookkeeping.flush)
        self._every("changes", self.config.change_poll_interval, self.feed.poll)
        if self.scan:
            self._every("pauses_seen", self.config.change_poll_interval, lambda: see_pauses(self.ctx))
        self._every("lost_slots", 1.0, self._claim_lost_slots)
        self._every("abandoned", self.heartbeat_interval / 2, self._sweep_abandoned)
        self._every("diff", self.config.schedule_check_interval, self.feed.full_diff)
        self._every("prune_changes", 600.0, self.feed.prune)
        self._every("skew", 10.0, self._measure_skew)
        for chore in self.chores:
            self._every(chore.name, chore.interval, chore.task)

    def _every(self, name: str, interval: float, task) -> None:
        now = time.monotonic()
        if now - self._last_run.get(name, float("-inf")) < interval:
            return
        self._last_run[name] = now
        if self.loops.one_pass(name, task):
            self.ctx.db_outage.up()

    def _on_db_error(self, exc: DatabaseError) -> None:
        self.ctx.db_outage.down(exc, "bookkeeping resumes when it returns")
        repair_connections()

    def _on_loop_death(self, name: str) -> None:
        self.exit_code = 1
        self.request_stop()

    def _beat(self) -> None:
        jobs = self.loaded_jobs() if len(self.specs) <= instances.JOBS_REPORTED_MAX else None
        instances.beat(
            instance_id=self.instance_id, started_at=self.started_at, jobs_loaded=len(self.specs),
            running_now=len(self.ctx.running),
            status={"jobs": jobs, "locks": self.locks.backend, "redis_down": self.ctx.redis_outage.is_down,
                    "feed": self.feed.describe(), "roles": [r for r, on in (("fire", self.fire), ("scan", self.scan))
                                                            if on], "dead_loops": self.loops.dead},
        )
        if self.fire and self.ctx.slot_gate is not None:
            self.ctx.slot_gate.shared = instances.others_fire(instance_id=self.instance_id)

    def _measure_skew(self) -> None:
        self.db_skew = instances.database_clock_skew()

    def _sweep_abandoned(self) -> None:
        sweep_abandoned(self.ctx, heartbeat_interval=self.heartbeat_interval)

    def _api_sync(self, *, instance_id: str) -> None:
        from schedules.importer.apply import run_periodic_sync

        # This runtime's own switch and interval, not the settings read again.
        run_periodic_sync(instance_id=instance_id, enabled=self.config.enable_api_sync,
                          interval=self.config.api_sync_interval)

    def _watchdog_loop(self) -> None:
        """Renews the locks and heartbeats of running scans every third of the
        lock timeout, so a scan of any length keeps its lock."""
        while not self._watchdog_stop.wait(self.heartbeat_interval):
            self.loops.one_pass("lock-watchdog", lambda: renew_running(self.ctx))

    def shutdown(self, grace: float | None = None) -> None:
        grace = self.config.shutdown_grace if grace is None else grace
        self.stop_event.set()
        logger.info("Stopping: no new slots; waiting up to %.0f s for %d running scan(s); queued slots stay "
                    "queued for the other instances", grace, len(self.ctx.running))
        self.feed.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + grace
        if self._startup_writes is not None:
            # A stop right after start must not lose the records of missed slots.
            self._startup_writes.join(max(deadline - time.monotonic(), 0))
        while self.ctx.running and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.ctx.running_mutex:
            left = list(self.ctx.running.values())
        self._watchdog_stop.set()
        if self.taker is not None:
            self.taker.shutdown()
        close_old_connections()
        try:
            if left:
                # Cut off by the shutdown: delivered again elsewhere (same
                # Idempotency-Key), as after a crash, while deliveries last.
                ids = [s.execution_id for s in left]
                requeued = history.requeue(execution_ids=ids, instance_id=self.instance_id, started=True,
                                           max_deliveries=self.config.max_deliveries)
                interrupted = history.mark_interrupted(
                    execution_ids=ids, instance_id=self.instance_id,
                    reason="the scheduler instance shut down before the scan finished")
                logger.warning("%d running scan(s) outlasted the shutdown grace time: %d put back in the queue, "
                               "%d interrupted (out of deliveries)", len(left), requeued, interrupted)
            instances.mark_stopped(instance_id=self.instance_id)
            self.ctx.bookkeeping.flush()
        except DatabaseError as exc:
            logger.warning("Could not record shutdown: %s", exc)
        for scan in left:
            if scan.lock is not None:
                self.locks.release(scan.lock)
        scans.close(self.ctx.runner)  # the browser goes with the instance
        close_old_connections()
        logger.info("Scheduler instance %s stopped", self.instance_id)


class _JobRef:
    """Enough of an APScheduler job for _on_unrun_slot when the job is gone."""

    def __init__(self, spec: JobSpec):
        self.kwargs = {"schedule_id": spec.schedule_id}


def _unused_job_function(**kwargs) -> None:
    """Jobs are run by SlotExecutor, which calls the service with the slot."""
    raise RuntimeError("schedule jobs run through SlotExecutor")
