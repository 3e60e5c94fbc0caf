"""Service: one ``runscheduler`` process: its lifecycle, and the loops it supervises.
It builds the slot path's parts (fire -> ... -> finish), starts them, runs the main loop, and stops them.

Start: register, take a fair share of the shards and load their jobs
(shard_leases.py, job_table.py), write their start-up records in the
background (startup.py), start firing and taking. The main loop's passes
(loops.Ticker) do the bookkeeping in short, interruptible steps: heartbeat,
change detection, abandoned-run sweep, chores. Shutdown releases the shard
leases at once, lets running scans finish within the grace time and leaves
queued slots queued.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from datetime import timezone as dt_timezone

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler
from django.db import DatabaseError, close_old_connections
from prometheus_client import start_http_server

from schedules import instances, scans
from schedules.importer.apply import run_periodic_sync
from schedules.runtime import housekeeping
from schedules.runtime.claim import SlotClaimer
from schedules.runtime.config import RuntimeConfig
from schedules.runtime.context import RunContext
from schedules.runtime.feed import ChangeFeed
from schedules.runtime.finish import hand_back_cut_off, sweep_abandoned
from schedules.runtime.fire import FiredSlots, SlotExecutor
from schedules.runtime.job_store import ShardJobStore
from schedules.runtime.job_table import JobTable
from schedules.runtime.locks import make_schedule_locks
from schedules.runtime.loops import Loops, Ticker
from schedules.runtime.outages import OutageLog, repair_connections, skip_checkout_health_checks
from schedules.runtime.run import renew_running
from schedules.runtime.shard_leases import ShardKeeper
from schedules.runtime.specs import load_spec
from schedules.runtime.startup import StartupWrites
from schedules.runtime.take import QueueTaker, see_pauses

logger = logging.getLogger("schedules.runtime")

TICK_SECONDS = 0.2


class SchedulerService:
    def __init__(self, config: RuntimeConfig | None = None, **options: object):
        """``options`` override single settings (RuntimeConfig field names)."""
        self.config = config = config or RuntimeConfig.from_settings(**options)
        self.instance_id = config.instance_id
        self.exit_code = 0
        self.started_at: datetime | None = None
        self.stop_event = threading.Event()
        self._stop_requested_at: float | None = None
        self._watchdog_stop = threading.Event()  # later than stop_event: running scans keep their locks
        self.db_skew = 0.0  # seconds this clock is ahead of the database's (see fire.py)
        skip_checkout_health_checks()
        runner = scans.get_runner()
        if config.scan:  # an instance that runs no scans needs no browser
            scans.preflight(runner)
        self.executor = SlotExecutor(max_workers=config.fire_threads, coalesce=config.coalesce,
                                     on_slot=self._on_slot, on_unrun_slot=self._on_unrun_slot,
                                     skew=lambda: self.db_skew)
        self.ctx = RunContext(
            config=config, locks=make_schedule_locks(redis_url=config.redis_url, timeout=config.lock_timeout),
            runner=runner, stop=self.stop_event, redis_outage=OutageLog("Redis"), db_outage=OutageLog(config.database),
            # Runs are timed by the database's clock, the one all instances share.
            clock=self.executor.db_now,
        )
        self.store = ShardJobStore()
        self.scheduler = BackgroundScheduler(timezone=dt_timezone.utc, executors={"default": self.executor},
                                             jobstores={"default": self.store},
                                             job_defaults={
                                                 # Coalescing is applied by SlotExecutor so that folded slots are recorded.
                                                 "coalesce": False,
                                                 "max_instances": config.max_instances,
                                                 "misfire_grace_time": config.misfire_grace,
                                             })
        self.jobs = JobTable(scheduler=self.scheduler, store=self.store, replace_existing=config.replace_existing,
                             misfire_grace=config.misfire_grace, max_instances=config.max_instances)
        # A pause reaches the runtime as a change: the pause snapshot is taken
        # again at once (take.see_pauses), not only at its next poll.
        self.feed = ChangeFeed(jobs=self.jobs, redis_url=config.redis_url, stop=self.stop_event,
                               on_changes=(lambda ids: see_pauses(self.ctx)) if config.scan else None)
        self.loops = Loops(stop=self.stop_event, on_death=self._on_loop_death, on_db_error=self._on_db_error)
        self.ticker = Ticker(loops=self.loops, on_pass=self.ctx.db_outage.up)
        # A run reads its schedule's current snapshot (settings included): no job holds a copy.
        self.taker = QueueTaker(ctx=self.ctx, max_workers=config.max_workers, spec_of=load_spec) if config.scan else None
        self.ctx.seats = self.taker
        self.claimer = SlotClaimer(ctx=self.ctx)
        self.fired = FiredSlots(ctx=self.ctx, jobs=self.jobs, claimer=self.claimer)
        self.scheduler.add_listener(self.fired.on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._writes_stop = threading.Event()  # at the end of the shutdown's grace time
        self.writes = StartupWrites(instance_id=config.instance_id, grace=config.misfire_grace, stop=self._writes_stop)
        # A --scans-only instance holds no shards and loads no jobs.
        self.keeper = ShardKeeper(config=config, jobs=self.jobs, writes=self.writes, clock=self.executor.db_now,
                                  stop=self.stop_event) if config.fire else None
        self.chores = housekeeping.chores(config, clock=self.executor.db_now)

    # The executor's callbacks, bound before FiredSlots exists.
    def _on_slot(self, *args: object) -> None:
        self.fired.on_slot(*args)

    def _on_unrun_slot(self, *args: object) -> None:
        self.fired.on_unrun_slot(*args)

    # --- lifecycle --------------------------------------------------------
    def start(self) -> None:
        config = self.config
        self.started_at = datetime.now(dt_timezone.utc)
        logger.info("Scheduler instance %s starting: %d workers, locks in %s%s", self.instance_id, config.max_workers,
                    self.ctx.locks.backend,
                    "" if self.ctx.locks.backend == "redis" else " (no Redis configured: single instance only)")
        self._measure_skew()
        self.feed.begin()
        loading = time.monotonic()
        if self.keeper is not None:
            self.keeper.begin()
            self.keeper.keep()  # this instance's share, loaded (alone: every shard)
        self._beat()
        held = len(self.keeper.leased) if self.keeper is not None else 0
        logger.info("Loaded %d enabled schedules of %d shard(s) in %.2f s%s", len(self.jobs), held,
                    time.monotonic() - loading, "" if config.fire else " (scans only: no shards, no jobs)")
        if self.keeper is not None:
            self.scheduler.start()
            # Bookkeeping writes (next_run values) need not hold up the firing of slots.
            self.loops.start("startup-writes", self.writes.run_until_stopped)
            self.loops.every("shard-leases", config.lease_pass, self.keeper.keep, at_once=False)
        self._add_main_loop_passes()
        self.loops.every("lock-watchdog", config.heartbeat_interval, lambda: renew_running(self.ctx),
                         until=self._watchdog_stop, at_once=False)
        if config.fire:
            self.loops.start("slot-claimer", lambda: self.claimer.run_until_stopped(self.loops.one_pass))
        if self.taker is not None:
            self.loops.start("queue-taker", lambda: self.taker.run_until_stopped(self.loops.one_pass))
        if self.feed.notices:
            self.loops.start("change-notices", self.feed.listen)
        if config.enable_api_sync:  # off the main loop: a slow API must not freeze heartbeats
            self.loops.every("api-sync", config.api_sync_interval, self._api_sync)
        for chore in self.chores:
            if chore.own_thread:  # a slow SMTP server or webhook must not hold up the main loop
                self.loops.every(chore.name, chore.interval, chore.task)
        if config.metrics_port:
            start_http_server(config.metrics_port, addr=config.metrics_addr)
        self._beat()

    def _add_main_loop_passes(self) -> None:
        config, add = self.config, self.ticker.add
        add("beat", 1.0, self._beat)
        add("bookkeeping", 0.5, self.ctx.bookkeeping.flush)
        add("changes", config.change_poll_interval, self.feed.poll)
        if config.scan:
            add("pauses_seen", config.change_poll_interval, lambda: see_pauses(self.ctx))
        add("lost_slots", 1.0, lambda: self.fired.claim_lost_slots(self.executor._pool.submit))
        add("abandoned", config.heartbeat_interval / 2, lambda: sweep_abandoned(self.ctx))
        add("diff", config.schedule_check_interval, self.feed.full_diff, ran_now=True)  # just loaded
        add("prune_changes", 600.0, self.feed.prune)
        add("skew", 10.0, self._measure_skew, ran_now=True)
        for chore in self.chores:
            if not chore.own_thread:
                add(chore.name, chore.interval, chore.task)

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
        # The shutdown's grace time counts from here (a signal handler only
        # sets this), not from when a start-up step in progress lets go.
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self.stop_event.set()

    def tick(self) -> None:
        close_old_connections()
        self.ticker.tick()

    def _on_db_error(self, exc: DatabaseError) -> None:
        self.ctx.db_outage.down(exc, "bookkeeping resumes when it returns")
        repair_connections()

    def _on_loop_death(self, name: str) -> None:
        self.exit_code = 1
        self.request_stop()

    def _beat(self) -> None:
        fire, scan = self.config.fire, self.config.scan
        jobs = self.jobs.loaded_jobs() if len(self.jobs) <= instances.JOBS_REPORTED_MAX else None
        instances.beat(
            instance_id=self.instance_id, started_at=self.started_at, jobs_loaded=len(self.jobs),
            running_now=len(self.ctx.running),
            status={"jobs": jobs, "locks": self.ctx.locks.backend, "redis_down": self.ctx.redis_outage.is_down,
                    "feed": self.feed.describe(), "roles": [r for r, on in (("fire", fire), ("scan", scan)) if on],
                    "shards": sorted(self.keeper.leased) if self.keeper is not None else [],
                    "dead_loops": self.loops.dead},
        )

    def _api_sync(self) -> dict | None:
        """One interval's import, by this runtime's own switch and interval (not the settings read again)."""
        return run_periodic_sync(instance_id=self.instance_id, enabled=self.config.enable_api_sync,
                                 interval=self.config.api_sync_interval)

    def _measure_skew(self) -> None:
        self.db_skew = instances.database_clock_skew()

    def shutdown(self, grace: float | None = None) -> None:
        grace = self.config.shutdown_grace if grace is None else grace
        self.request_stop()
        logger.info("Stopping: no new slots; waiting up to %.0f s for %d running scan(s); queued slots stay "
                    "queued for the other instances", grace, len(self.ctx.running))
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = self._stop_requested_at + grace
        if self.keeper is not None:
            try:
                self.keeper.release_all()
            except DatabaseError as exc:  # they expire instead
                logger.warning("Could not release the shard leases: %s", exc)
        # Start-up writes go on meanwhile, but stop early enough for the exit
        # to stay within the grace time (what is left is the next owner's).
        writes_until = deadline - min(5.0, grace / 4)
        while self.ctx.running or not self.writes.idle():
            now = time.monotonic()
            if now >= writes_until and not self._writes_stop.is_set():
                self._writes_stop.set()
            if now >= deadline or (not self.ctx.running and self._writes_stop.is_set()):
                break
            time.sleep(0.05)
        self._writes_stop.set()
        with self.ctx.running_mutex:
            left = list(self.ctx.running.values())
        self._watchdog_stop.set()
        if self.taker is not None:
            self.taker.shutdown()
        close_old_connections()
        try:
            hand_back_cut_off(self.ctx, left)
            instances.mark_stopped(instance_id=self.instance_id)
            self.ctx.bookkeeping.flush()
        except DatabaseError as exc:
            logger.warning("Could not record shutdown: %s", exc)
        scans.close(self.ctx.runner)  # the browser goes with the instance
        close_old_connections()
        logger.info("Scheduler instance %s stopped", self.instance_id)
