"""Config: the settings alerts work with, read once per process into AlertConfig.
Alerts code reads ``alert_config()``, never django.conf.settings; a settings override (tests) builds it again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from scanner_project.outbound.addresses import Network, networks


@dataclass(frozen=True)
class AlertConfig:
    emails: tuple[str, ...]  # ALERT_EMAILS
    # ALERT_WEBHOOK_URLS: a Slack webhook's path is its secret, so never in a repr.
    webhook_urls: tuple[str, ...] = field(repr=False)
    after_failures: int  # ALERT_AFTER_FAILURES: a schedule's runs failed in a row, unless its rule says otherwise
    sync_after_failures: int  # ALERT_SYNC_AFTER_FAILURES
    no_instance_seconds: float  # ALERT_NO_INSTANCE_SECONDS
    queue_age_seconds: float  # ALERT_QUEUE_AGE_SECONDS
    rate_limit: int  # ALERT_RATE_LIMIT: messages per channel per window
    rate_window_seconds: float  # ALERT_RATE_WINDOW_SECONDS
    retry_backoff: float  # ALERT_RETRY_BACKOFF
    delivery_give_up_seconds: float  # ALERT_DELIVERY_GIVE_UP_SECONDS
    webhook_timeout: float  # ALERT_WEBHOOK_TIMEOUT
    allowed_networks: tuple[Network, ...]  # ALERT_ALLOWED_NETWORKS
    email_timeout: float  # EMAIL_TIMEOUT: Django's, bounds an email's send
    from_email: str  # DEFAULT_FROM_EMAIL

    @classmethod
    def from_settings(cls) -> "AlertConfig":
        return cls(
            emails=tuple(settings.ALERT_EMAILS),
            webhook_urls=tuple(settings.ALERT_WEBHOOK_URLS),
            after_failures=settings.ALERT_AFTER_FAILURES,
            sync_after_failures=settings.ALERT_SYNC_AFTER_FAILURES,
            no_instance_seconds=settings.ALERT_NO_INSTANCE_SECONDS,
            queue_age_seconds=settings.ALERT_QUEUE_AGE_SECONDS,
            rate_limit=settings.ALERT_RATE_LIMIT,
            rate_window_seconds=settings.ALERT_RATE_WINDOW_SECONDS,
            retry_backoff=settings.ALERT_RETRY_BACKOFF,
            delivery_give_up_seconds=settings.ALERT_DELIVERY_GIVE_UP_SECONDS,
            webhook_timeout=settings.ALERT_WEBHOOK_TIMEOUT,
            allowed_networks=networks(settings.ALERT_ALLOWED_NETWORKS),
            email_timeout=settings.EMAIL_TIMEOUT,
            from_email=settings.DEFAULT_FROM_EMAIL,
        )


@functools.cache
def alert_config() -> AlertConfig:
    """This process's AlertConfig, built at its first use."""
    return AlertConfig.from_settings()


@receiver(setting_changed)
def _settings_changed(**kwargs: object) -> None:
    # Settings change at run time only under override_settings (tests): any
    # change builds the config again at its next use, which costs nothing.
    alert_config.cache_clear()
