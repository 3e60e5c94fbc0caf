"""Secrets stay off DEBUG error pages and out of messages; values in messages are
short; domains are validated and stored in their normalized form; the SQLite
file is private."""

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import RequestFactory
from django.views.debug import technical_500_response

from scanner_project import env as env_module
from schedules.importer import client as api_client
from schedules.importer.apply import import_entries
from schedules.models import Schedule
from tests.api_server import entry

ROOT = Path(__file__).resolve().parent.parent
REDIS_PASSWORD = "redis-pw-" + uuid.uuid4().hex
API_TOKEN = "api-tok-" + uuid.uuid4().hex
SCAN_TOKEN = "scan-tok-" + uuid.uuid4().hex
DB_PASSWORD = "db-pw-" + uuid.uuid4().hex


def _failure_of(call, **kwargs):
    # The traceback starts here, in a frame that holds nothing secret itself.
    try:
        call(**kwargs)
    except RuntimeError:
        return sys.exc_info()
    raise AssertionError("the call did not fail")


def test_a_debug_error_page_shows_no_secret_setting_and_no_token_held_by_the_failing_call(
    settings, api_server, monkeypatch
):
    redis_url = f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"
    settings.DEBUG = True
    settings.REDIS_URL = redis_url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": redis_url}}
    settings.API_TOKEN, settings.SCAN_API_TOKEN = API_TOKEN, SCAN_TOKEN
    settings.DATABASE_URL = f"postgresql://scheduler:{DB_PASSWORD}@db.internal:5432/scheduler"

    def broken_parse(*, body, shown, **_):
        raise RuntimeError("the parser broke")

    monkeypatch.setattr(api_client, "_parse", broken_parse)
    exc_info = _failure_of(api_client.fetch_entries, url=api_server.serve_json("/s", {"data": []}), token=API_TOKEN,
                           timeout=1, deadline=2, max_bytes=10_000)
    request = RequestFactory().get("/admin/", HTTP_AUTHORIZATION=f"Bearer {API_TOKEN}")
    page = technical_500_response(request, *exc_info).content.decode()
    assert "the parser broke" in page and "fetch_entries" in page  # it is the error page of that call
    for secret in (REDIS_PASSWORD, API_TOKEN, SCAN_TOKEN, DB_PASSWORD):
        assert secret not in page


@pytest.mark.parametrize("value", ["postgresql//user:{pw}@host/db", "postgres://user:{pw}@host:notaport/db",
                                   "mysql://user:{pw}@host/db"])
def test_a_mistyped_database_url_never_shows_its_password(monkeypatch, recwarn, value):
    monkeypatch.setenv("DATABASE_URL", value.format(pw=DB_PASSWORD))
    with pytest.raises(ImproperlyConfigured) as raised:
        env_module.env_database("DATABASE_URL", "sqlite:///x.sqlite3")
    assert "DATABASE_URL=" in str(raised.value) and DB_PASSWORD not in str(raised.value)
    assert not [w for w in recwarn if DB_PASSWORD in str(w.message)]  # django-environ's own warning


def test_a_huge_bad_value_is_shortened_in_the_start_up_error(monkeypatch):
    monkeypatch.setenv("MAX_WORKERS", "9" * 100_000 + "x")
    with pytest.raises(ImproperlyConfigured) as raised:
        env_module.env_int("MAX_WORKERS", 5)
    assert str(raised.value).startswith("MAX_WORKERS='999") and len(str(raised.value)) < 1000


@pytest.mark.django_db
@pytest.mark.parametrize("domain", ["example.com\n", "example.com\r\n", "exa\tmple.com", "example.com/\n"])
def test_a_domain_with_a_trailing_newline_or_control_character_is_rejected(domain):
    result = import_entries(entries=[entry("nl", domain)])
    assert result["created"] == 0 and result["rejected"][0].startswith("nl: domain: ")
    assert not Schedule.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("given, stored", [("EXAMPLE.\u212aOM", "example.kom"), ("Bücher.DE", "xn--bcher-kva.de"),
                                           ("\uff25xample.com", "example.com"), ("127.0.0.1:8080", "127.0.0.1:8080")])
def test_a_domain_is_stored_in_its_normalized_form(make_schedule, given, stored):
    assert make_schedule(domain=given).domain == stored
    result = import_entries(entries=[entry("norm", given)])
    assert Schedule.objects.get(domain_config_id="norm").domain == stored
    again = import_entries(entries=[entry("norm", given)])
    assert (again["updated"], again["skipped"]) == (0, 1), result  # the normalized form is no change


@pytest.mark.django_db
def test_a_rejection_shows_a_9_mb_value_shortened(make_schedule):
    huge = "a" * 9_000_000
    with pytest.raises(ValidationError) as raised:
        make_schedule(domain=huge + " x")
    assert len(str(raised.value)) < 2000 and "9000002 characters in all" in str(raised.value)


def test_the_sqlite_file_is_created_private(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SECRET_KEY": "k" * 60,
           "DATABASE_URL": f"sqlite:///{database}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
