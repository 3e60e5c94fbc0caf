"""The search of every admin list is capped at SEARCH_MAX_CHARS (200).

A 50,000-character search answered 500 on SQLite ("LIKE or GLOB pattern too
complex"). Now every list with a search, the project's and Django's own
(users, groups), refuses a longer one with a message that names it and shows
nothing, without running the search."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scanner_project.admin_site import SEARCH_MAX_CHARS

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
LONG = "x" * 50_000


def _searchable():
    return sorted(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
                  for model, model_admin in admin.site._registry.items() if model_admin.search_fields)


def test_every_list_with_a_search_is_covered():
    assert {"admin:schedules_schedule_changelist", "admin:history_jobexecution_changelist",
            "admin:audit_auditentry_changelist", "admin:auth_user_changelist"} <= set(_searchable())


@pytest.mark.parametrize("changelist", _searchable())
def test_a_search_longer_than_the_cap_is_refused_with_a_message(admin_client, make_schedule, changelist):
    make_schedule(domain="shop.example.com")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(changelist), {"q": LONG})
    assert response.status_code == 200
    body = response.content.decode()
    assert f"is 50000 characters long, more than {SEARCH_MAX_CHARS}; nothing was searched" in body
    assert "Search (q): &#x27;xxxxxxxxxx" in body  # the value, shortened
    assert not any("x" * (SEARCH_MAX_CHARS + 1) in str(q["sql"]) for q in queries.captured_queries)


def test_a_search_at_the_cap_still_searches(admin_client, make_schedule):
    make_schedule(domain="shop.example.com")
    term = "shop" + " " * (SEARCH_MAX_CHARS - 4)
    response = admin_client.get(reverse("admin:schedules_schedule_changelist"), {"q": term})
    assert response.status_code == 200 and b"shop.example.com" in response.content
    assert b"nothing was searched" not in response.content


SQLITE_SEARCH = """
import django
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from schedules.models import Schedule
call_command("migrate", verbosity=0)
s = Schedule(domain_config_id="a", domain="a.example.com", frequency="daily", time_config={"hour": 1, "minute": 0})
s.full_clean(); s.save()
client = Client(raise_request_exception=False)
client.force_login(User.objects.create_superuser("root", password="pw"))
for url in ("/admin/schedules/schedule/", "/admin/audit/auditentry/", "/admin/auth/user/"):
    response = client.get(url, {"q": "x" * 50000})
    print(url, response.status_code, b"nothing was searched" in response.content)
"""


def test_on_sqlite_a_50000_character_search_answers_with_the_message_not_500(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SECRET_KEY": "k" * 60, "PYTHONPATH": str(ROOT),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'search.sqlite3'}", "DJANGO_SETTINGS_MODULE": "scanner_project.settings",
           "ALLOWED_HOSTS": "testserver"}
    result = subprocess.run([sys.executable, "-c", SQLITE_SEARCH], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:3] == ["/admin/schedules/schedule/ 200 True", "/admin/audit/auditentry/ 200 True",
                                             "/admin/auth/user/ 200 True"], result.stdout + result.stderr[-3000:]
