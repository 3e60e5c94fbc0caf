"""Index operations for tables that are large in production (job_executions).

On PostgreSQL they are Django's AddIndexConcurrently / RemoveIndexConcurrently:
``CREATE INDEX CONCURRENTLY`` builds without locking out writes, where a plain
``CREATE INDEX`` blocks every insert into a table of millions of rows until
the build ends. They run outside a transaction, so their migration must set
``atomic = False``. Elsewhere (SQLite, the embedded default) they are the plain
AddIndex / RemoveIndex. The migration state is the same either way, so
``makemigrations`` sees no change.

A concurrent build that fails (a cancelled migration) leaves an INVALID index
behind; drop it (``DROP INDEX CONCURRENTLY name``) and run ``migrate`` again.
"""

from __future__ import annotations

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


class _ConcurrentOnPostgres:
    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddIndexConcurrentlyOnPostgres(_ConcurrentOnPostgres, AddIndexConcurrently):
    plain = migrations.AddIndex


class RemoveIndexConcurrentlyOnPostgres(_ConcurrentOnPostgres, RemoveIndexConcurrently):
    plain = migrations.RemoveIndex
