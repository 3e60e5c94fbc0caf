"""Prometheus metrics, defined once for the web process and the schedulers.

Each process exposes its own registry: ``runscheduler`` on METRICS_PORT, the
web process at /metrics.
"""

from prometheus_client import Counter, Gauge, Histogram

EXECUTIONS = Counter("scanner_executions_total", "Finished executions by status", ["status", "trigger"])
EXECUTION_DURATION = Histogram(
    "scanner_execution_duration_seconds",
    "Scan duration",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SLOT_START_DELAY = Histogram(
    "scanner_slot_start_delay_seconds",
    "Time from a slot's scheduled time to a worker starting it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
CLAIM_LOSSES = Counter("scanner_claim_losses_total", "Slots another instance claimed first")
LOCK_CONTENTION = Counter("scanner_lock_contention_total", "Slots skipped because the schedule's lock was held")
LOCKS_LOST = Counter("scanner_locks_lost_total", "Locks lost while a scan was running")
SCHEDULES_LOADED = Gauge("scanner_schedules_loaded", "Schedules loaded as jobs in this instance (of its shards)")
SHARDS_HELD = Gauge("scanner_shards_held", "Shards whose leases this instance holds")
SHARDS_UNOWNED = Gauge("scanner_shards_unowned", "Shards no live lease covers, as this instance saw at its last pass")
CHANGES_APPLIED = Counter("scanner_schedule_changes_applied_total", "Schedule changes applied to jobs", ["action", "source"])
SYNC_RESULTS = Counter("scanner_sync_entries_total", "API sync entries by outcome", ["outcome"])
SYNC_FAILURES = Counter("scanner_sync_failures_total", "API syncs that could not read the API")
HISTORY_CLEANUP_DELETED = Counter("scanner_history_cleanup_deleted_total", "Execution rows deleted by cleanup")
LOOP_ALIVE = Gauge("scanner_loop_alive", "1 while the instance's background loop runs, 0 once it ended", ["loop"])
QUEUE_DEPTH = Gauge("scanner_queue_depth", "Executions queued for a free worker (read at scrape time)")
QUEUE_OLDEST = Gauge("scanner_queue_oldest_seconds", "How long the oldest queued execution has waited (0: none)")
