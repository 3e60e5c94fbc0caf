"""Indexes on job_executions (millions of rows in production) are built and
dropped CONCURRENTLY on PostgreSQL, in non-atomic migrations; SQLite runs the
same migrations with plain CREATE INDEX. A plain CREATE INDEX locks out every
insert (every claimed slot) until the build ends.

The history migrations that added indexes were converted in place: a database
that already applied them runs nothing again, so ``migrate`` on an existing
deployment is unaffected."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations import AddIndex, RemoveIndex
from django.db.migrations.loader import MigrationLoader

from tests import cluster

ROOT = Path(__file__).resolve().parent.parent
PROJECT_APPS = ("history", "schedules", "audit", "alerts", "pauses", "reruns")


def _index_migrations_on_job_executions():
    """(app, name, migration) of every migration with an index operation on job_executions."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app not in PROJECT_APPS:
            continue
        operations = [op for op in migration.operations if isinstance(op, (AddIndex, RemoveIndex))
                      and (app, op.model_name_lower) == ("history", "jobexecution")]
        if operations:
            found.append((app, name, migration, operations))
    return found


def test_every_index_operation_on_job_executions_is_concurrent_in_a_non_atomic_migration():
    found = _index_migrations_on_job_executions()
    assert {name for _, name, _, _ in found} >= {"0002_started_at_covering_index", "0003_queue_order_index"}
    for app, name, migration, operations in found:
        assert migration.atomic is False, f"{app}.{name} must set atomic = False"
        for op in operations:
            assert isinstance(op, (AddIndexConcurrently, RemoveIndexConcurrently)), f"{app}.{name}: {op.describe()}"


def test_sqlmigrate_on_postgresql_says_concurrently_for_every_index_statement():
    env = {**os.environ, "DATABASE_URL": cluster.test_database_url()}
    for app, name, _, _ in _index_migrations_on_job_executions():
        result = subprocess.run([sys.executable, "manage.py", "sqlmigrate", app, name], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        sql = result.stdout
        statements = [line for line in sql.splitlines() if line.startswith(("CREATE INDEX", "DROP INDEX"))]
        assert statements, sql
        assert all("INDEX CONCURRENTLY" in line for line in statements), sql
        assert "BEGIN;" not in sql  # CONCURRENTLY cannot run inside a transaction


def _migrate(env: dict, *args: str) -> None:
    result = subprocess.run([sys.executable, "manage.py", "migrate", *args, "-v", "0"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture
def fresh_postgres_database():
    url = cluster.test_database_url()
    name = "migrations_concurrent_test"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    yield url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_postgresql_migrates_forwards_backwards_and_forwards_with_valid_indexes(fresh_postgres_database):
    env = {**os.environ, "DATABASE_URL": fresh_postgres_database}
    _migrate(env)
    _migrate(env, "history", "0001")
    _migrate(env)
    with psycopg.connect(fresh_postgres_database) as db:
        rows = db.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                          "WHERE c.relname IN ('job_exec_started_cover_idx', 'job_exec_queue_idx', "
                          "'job_exec_queued_idx')").fetchall()
    assert sorted(rows) == [("job_exec_queue_idx", True), ("job_exec_started_cover_idx", True)]


def test_sqlite_runs_the_same_migrations_with_plain_indexes(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SECRET_KEY": "k" * 60,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    _migrate(env)
    _migrate(env, "history", "0001")
    _migrate(env)
    import sqlite3

    with sqlite3.connect(tmp_path / "fresh.sqlite3") as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"job_exec_started_cover_idx", "job_exec_queue_idx"} <= names and "job_exec_queued_idx" not in names
