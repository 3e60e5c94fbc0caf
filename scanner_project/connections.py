"""The original design's connectivity checks:

    get_redis_client().ping()
    get_db_connection().ping()
"""

from __future__ import annotations

import logging
from typing import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)


def get_redis_client(alias: str = "default"):
    """django-redis' client for the cache ``alias`` (socket timeouts from
    REDIS_SOCKET_TIMEOUT apply). Raises ImproperlyConfigured without Redis."""
    if not settings.REDIS_URL:
        raise ImproperlyConfigured("Redis is not configured (REDIS_URL or REDIS_HOST unset)")
    from django_redis import get_redis_connection

    return get_redis_connection(alias)


class DatabaseConnection:
    """A database alias with a ping() like the design's DatabaseConnection.

    ``factory`` (for checks of a server outside settings.DATABASES) makes a
    private connection per ping, in the pinging thread, closed afterwards.
    """

    def __init__(self, alias: str = "default", *, factory: Callable[[], BaseDatabaseWrapper] | None = None):
        self.alias = alias
        self.factory = factory

    def ping(self, *, timeout: float = 1.0) -> bool:
        """SELECT 1 with a server-side statement timeout; False on any database error.

        statement_timeout only helps against a busy server; a server that does
        not answer at all is the caller's to bound (see scanner_project.health).
        """
        connection = self.factory() if self.factory else connections[self.alias]
        try:
            if self.factory:
                return _select_one(connection, timeout=timeout, local=False)
            with transaction.atomic(using=self.alias):
                return _select_one(connection, timeout=timeout, local=True)
        except DatabaseError as exc:
            logger.warning("Database %r ping failed: %s", self.alias, exc)
            return False
        finally:
            if self.factory:
                connection.close()

    def close(self) -> None:
        """Give this thread's connection of the alias back (to the pool)."""
        if not self.factory:
            connections[self.alias].close()


def _select_one(connection: BaseDatabaseWrapper, *, timeout: float, local: bool) -> bool:
    with connection.cursor() as cursor:
        restore = None
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            restore = cursor.fetchone()[0]
            # is_local=true: ends with the transaction, the connection's own setting stays.
            cursor.execute("SELECT set_config('statement_timeout', %s, %s)", [str(max(int(timeout * 1000), 1)), local])
        cursor.execute("SELECT 1")
        ok = cursor.fetchone() == (1,)
        if restore is not None:
            # Inside a caller's transaction a local setting would outlive this ping.
            cursor.execute("SELECT set_config('statement_timeout', %s, %s)", [restore, local])
        return ok


def get_db_connection(alias: str = "default") -> DatabaseConnection:
    return DatabaseConnection(alias)
