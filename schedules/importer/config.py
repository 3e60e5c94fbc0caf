"""Config: the settings the API import works with, read once per process into ImporterConfig.
The importer reads ``importer_config()``, never django.conf.settings; a settings override (tests) builds it again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True)
class ImporterConfig:
    # API_URL may carry user info or an api key in its query, API_TOKEN is one:
    # neither is ever in a repr.
    api_url: str = field(repr=False)
    api_token: str = field(repr=False)
    request_timeout: float  # REQUEST_TIMEOUT: each request's connect and read timeout
    deadline: float  # API_SYNC_DEADLINE: the whole fetch, retries included
    max_bytes: int  # HTTP_MAX_RESPONSE_BYTES
    retries: int  # API_SYNC_RETRIES
    backoff: float  # API_SYNC_BACKOFF
    enabled: bool  # ENABLE_API_SYNC: the periodic import inside runscheduler
    interval: float  # API_SYNC_INTERVAL
    default_timezone: str  # TIME_ZONE: an entry's zone when it names none

    @classmethod
    def from_settings(cls) -> "ImporterConfig":
        return cls(
            api_url=settings.API_URL,
            api_token=settings.API_TOKEN,
            request_timeout=settings.REQUEST_TIMEOUT,
            deadline=settings.API_SYNC_DEADLINE,
            max_bytes=settings.HTTP_MAX_RESPONSE_BYTES,
            retries=settings.API_SYNC_RETRIES,
            backoff=settings.API_SYNC_BACKOFF,
            enabled=settings.ENABLE_API_SYNC,
            interval=settings.API_SYNC_INTERVAL,
            default_timezone=settings.TIME_ZONE,
        )


@functools.cache
def importer_config() -> ImporterConfig:
    """This process's ImporterConfig, built at its first use."""
    return ImporterConfig.from_settings()


@receiver(setting_changed)
def _settings_changed(**kwargs: object) -> None:
    # Settings change at run time only under override_settings (tests): any
    # change builds the config again at its next use, which costs nothing.
    importer_config.cache_clear()
