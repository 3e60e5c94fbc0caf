"""Settings are read at import, so each case runs in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT = "import django; django.setup(); from django.conf import settings as s; print({})"


def load(env: dict, expression: str = "'ok'") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "scanner_project.settings"} | env)
    return subprocess.run(
        [sys.executable, "-c", PRINT.format(expression)], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("MAX_WORKERS", "abc", "expected an integer"),
        ("MAX_WORKERS", "0", "must be at least 1"),
        ("JOB_COALESCE", "ture", "expected true or false"),
        ("JOB_MISFIRE_GRACE_TIME", "5m", "expected an integer"),
        ("REDIS_PORT", "99999", "must be at most 65535"),
        ("LOCK_TIMEOUT", "soon", "expected a number"),
        ("REQUEST_TIMEOUT", "-1", "must be at least"),
        ("TIME_ZONE", "Mars/Base", "not an IANA time zone"),
        ("LOG_FORMAT", "xml", "expected one of text, json"),
        ("REDIS_URL", "localhost:6379", "expected redis://"),
        ("DATABASE_URL", "nosuchdb://x", "not a database URL"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(name, value, fragment):
    env = {name: value}
    if name == "REDIS_PORT":
        env["REDIS_HOST"] = "127.0.0.1"
    result = load(env)
    assert result.returncode != 0
    assert f"{name}={value!r} is invalid" in result.stderr
    assert fragment in result.stderr


def test_no_environment_is_the_embedded_default():
    result = load({}, "s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.REDIS_URL, s.MAX_WORKERS")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "django.core.cache.backends.locmem.LocMemCache", "5"]


def test_original_design_variables_build_the_redis_url_and_pools():
    result = load(
        {"DATABASE_URL": "postgresql://u:p@db.internal:5432/cookie_scanner", "REDIS_HOST": "cache.internal",
         "REDIS_PORT": "6380", "REDIS_DB": "2", "REDIS_PASSWORD": "p@ss/word", "MAX_WORKERS": "7",
         "JOB_COALESCE": "false", "JOB_MISFIRE_GRACE_TIME": "120"},
        "s.REDIS_URL, s.DATABASES['default']['OPTIONS']['pool'], "
        "s.CACHES['default']['OPTIONS']['CONNECTION_POOL_KWARGS']['max_connections'], "
        "s.MAX_WORKERS, s.JOB_COALESCE, s.JOB_MISFIRE_GRACE_TIME",
    )
    assert result.returncode == 0, result.stderr
    assert "redis://:p%40ss%2Fword@cache.internal:6380/2" in result.stdout
    assert "'min_size': 1, 'max_size': 10" in result.stdout
    assert result.stdout.split()[-4:] == ["50", "7", "False", "120"]


def test_check_deploy_passes_with_production_values(tmp_path):
    env = {
        "SECRET_KEY": "k" * 64 + "-production-like-value-!@#",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "scheduler.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SESSION_COOKIE_SECURE": "true",
        "CSRF_COOKIE_SECURE": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}} | env
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
