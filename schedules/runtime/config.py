"""Config: the settings a runtime works with, read once when it is built.

Everything below reads this object, never django.conf.settings again, so
arguments (EnhancedScheduler(enable_api_sync=True), --scans-only) really apply.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings

from schedules import instances

FIRE_THREADS = 4


@dataclass(frozen=True)
class RuntimeConfig:
    instance_id: str
    max_workers: int
    schedule_check_interval: float
    enable_api_sync: bool
    api_sync_interval: float
    lock_timeout: float
    max_deliveries: int
    misfire_grace: float
    coalesce: bool
    max_instances: int
    replace_existing: bool
    retry_backoff: float
    shutdown_grace: float
    change_poll_interval: float
    history_retention_days: int
    alert_check_interval: float
    metrics_port: int
    metrics_addr: str
    redis_url: str  # "" in the embedded default: local locks, no notices
    database: str  # what the logs call the database: "PostgreSQL" or "database"
    fire: bool = True  # fire slots into the queue (--scans-only: no)
    scan: bool = True  # take queued slots and run their scans (--fire-only: no)

    @classmethod
    def from_settings(cls, **overrides) -> "RuntimeConfig":
        """The settings, with every override that is not None applied."""
        values = {
            "instance_id": instances.default_instance_id(),
            "max_workers": settings.MAX_WORKERS,
            "schedule_check_interval": settings.SCHEDULE_CHECK_INTERVAL,
            "enable_api_sync": settings.ENABLE_API_SYNC,
            "api_sync_interval": settings.API_SYNC_INTERVAL,
            "lock_timeout": settings.LOCK_TIMEOUT,
            "max_deliveries": settings.MAX_DELIVERIES,
            "misfire_grace": settings.JOB_MISFIRE_GRACE_TIME,
            "coalesce": settings.JOB_COALESCE,
            "max_instances": settings.JOB_MAX_INSTANCES,
            "replace_existing": settings.JOB_REPLACE_EXISTING_INSTANCE,
            "retry_backoff": settings.SCAN_RETRY_BACKOFF,
            "shutdown_grace": settings.SHUTDOWN_GRACE_SECONDS,
            "change_poll_interval": settings.CHANGE_POLL_INTERVAL,
            "history_retention_days": settings.HISTORY_RETENTION_DAYS,
            "alert_check_interval": settings.ALERT_CHECK_INTERVAL,
            "metrics_port": settings.METRICS_PORT,
            "metrics_addr": settings.METRICS_ADDR,
            "redis_url": settings.REDIS_URL,
            "database": "PostgreSQL" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "database",
        }
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown runtime option(s): {', '.join(sorted(unknown))}")
        values.update({name: value for name, value in overrides.items() if value is not None})
        config = cls(**values)
        if not (config.fire or config.scan):
            raise ValueError("an instance must fire slots, run scans, or both")
        return config

    @property
    def fire_threads(self) -> int:
        """Firing only claims (an INSERT per slot) and hands the scan to a
        worker: a few threads keep up with any number of workers, and leave
        the pool's connections to them."""
        return min(self.max_workers, FIRE_THREADS)

    @property
    def heartbeat_interval(self) -> float:
        """Locks and heartbeats are renewed every third of the lock timeout."""
        return self.lock_timeout / 3

    @property
    def lease_ttl(self) -> float:
        """A shard lease lasts one and a half heartbeats past its renewal:
        with a renewal every lease_pass, a dead owner's shards are taken
        within two heartbeats."""
        return self.heartbeat_interval * 1.5

    @property
    def lease_pass(self) -> float:
        """How often the shard keeper renews and rebalances."""
        return min(1.0, self.heartbeat_interval / 4)
