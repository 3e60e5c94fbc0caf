from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from history.models import JobExecution
from tests.history_factories import make_execution

pytestmark = pytest.mark.django_db

LIST = "admin:history_jobexecution_changelist"
TRACEBACK = 'Traceback (most recent call last):\n  File "runners.py", line 9, in run\n<boom> & "quotes"\nRuntimeError: boom'


@pytest.fixture
def failed_run(make_schedule):
    schedule = make_schedule(domain="shop.example.com")
    return make_execution(
        schedule=schedule, status="failed", now=timezone.now(), duration=2.5, instance_id="web-1-42",
        error_message="RuntimeError: boom " + "x" * 100,
        error_details={"type": "builtins.RuntimeError", "message": "boom", "traceback": TRACEBACK, "attempts": 3},
        metadata={"runner": "probe", "scan": {"cookies": [
            {"name": "sid", "domain": "shop.example.com", "path": "/", "expires": None, "secure": True,
             "http_only": True, "same_site": "Lax", "third_party": False, "phase": "before_consent"},
            {"name": "<tracker>", "domain": ".ads.example", "path": "/", "expires": "2027-01-01T00:00:00+00:00",
             "secure": False, "http_only": False, "same_site": "", "third_party": True, "phase": "after_consent"},
        ]}},
    )


def test_list_shows_status_colour_duration_error_and_schedule_link(admin_client, failed_run):
    response = admin_client.get(reverse(LIST))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<span style="color:#cf222e;font-weight:bold">failed</span>' in html
    assert "2.50 s" in html
    assert "RuntimeError: boom " + "x" * 58 + "..." in html
    schedule_url = reverse("admin:schedules_schedule_change", args=[failed_run.schedule_id])
    assert f'<a href="{schedule_url}">shop.example.com</a>' in html


def test_filters_by_status_domain_and_instance_without_distinct(admin_client, failed_run, make_schedule):
    other = make_schedule(domain="blog.example.com")
    make_execution(schedule=other, status="success", now=timezone.now(), instance_id="web-2-7")
    url = reverse(LIST)

    def shown(**params):
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url, params)
        assert response.status_code == 200
        assert not any("DISTINCT" in q["sql"] for q in queries), "a filter scanned the table for choices"
        return {d for d in ("shop.example.com", "blog.example.com") if f">{d}</a>" in response.content.decode()}

    assert shown() == {"shop.example.com", "blog.example.com"}
    assert shown(status__exact="success") == {"blog.example.com"}
    assert shown(domain=" Shop.Example.com ") == {"shop.example.com"}
    assert shown(instance="web-2-7") == {"blog.example.com"}
    assert shown(instance="web-2-7", status__exact="failed") == set()
    # The input filter keeps the other active filters as hidden fields.
    html = admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert '<input type="hidden" name="status__exact" value="failed">' in html
    assert 'name="domain"' in html and 'name="instance"' in html


def test_date_filter_and_search(admin_client, failed_run, make_schedule):
    old = make_schedule(domain="old.example.com")
    make_execution(schedule=old, status="success", now=timezone.now(), ago=timedelta(days=40))
    response = admin_client.get(reverse(LIST), {"started_at__gte": str(timezone.now() - timedelta(days=7)),
                                                  "started_at__lt": str(timezone.now() + timedelta(days=1))})
    assert b"shop.example.com</a>" in response.content and b"old.example.com</a>" not in response.content
    response = admin_client.get(reverse(LIST), {"q": "old.example"})
    assert b"old.example.com</a>" in response.content and b"shop.example.com</a>" not in response.content


def test_detail_shows_traceback_and_cookie_table(admin_client, failed_run):
    response = admin_client.get(reverse("admin:history_jobexecution_change", args=[failed_run.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    escaped = TRACEBACK.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    assert f'<pre class="traceback" style="white-space:pre-wrap;max-height:40em;overflow:auto;margin:0">{escaped}</pre>' in html
    assert "builtins.RuntimeError" in html
    assert ("<th>name</th><th>domain</th><th>path</th><th>expires</th><th>secure</th><th>http only</th>"
            "<th>same site</th><th>third party</th><th>first seen</th>") in html
    assert ("<td>sid</td><td>shop.example.com</td><td>/</td><td>session</td><td>yes</td><td>yes</td><td>Lax</td>"
            "<td>no</td><td>before consent</td>") in html
    assert ("<td>&lt;tracker&gt;</td><td>.ads.example</td><td>/</td><td>2027-01-01T00:00:00+00:00</td><td>no</td>"
            "<td>no</td><td></td><td>yes</td><td>after consent</td>") in html
    assert "<tracker>" not in html


def test_nobody_can_add_change_or_delete_history_not_even_a_superuser(admin_client, failed_run):
    change = reverse("admin:history_jobexecution_change", args=[failed_run.pk])
    assert b'name="_save"' not in admin_client.get(change).content
    response = admin_client.post(change, {"status": "success", "error_message": "", "_save": "Save"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:history_jobexecution_add")).status_code == 403
    assert admin_client.post(reverse("admin:history_jobexecution_add"), {"status": "success"}).status_code == 403
    response = admin_client.post(reverse("admin:history_jobexecution_delete", args=[failed_run.pk]), {"post": "yes"})
    assert response.status_code == 403
    # No bulk delete action either.
    listing = admin_client.get(reverse(LIST))
    assert b"delete_selected" not in listing.content
    admin_client.post(reverse(LIST), {"action": "delete_selected", "_selected_action": [failed_run.pk], "post": "yes"})
    stored = JobExecution.objects.get(pk=failed_run.pk)
    assert (stored.status, stored.duration_seconds) == ("failed", 2.5)


def test_schedule_page_shows_its_last_20_runs_and_success_rate(admin_client, make_schedule):
    schedule, other = make_schedule(), make_schedule()
    now = timezone.now()
    for hour in range(1, 26):
        make_execution(schedule=schedule, status="failed" if hour % 5 == 0 else "success", now=now,
                       ago=timedelta(hours=hour), duration=hour)
    make_execution(schedule=other, status="failed", now=now)
    response = admin_client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count(reverse("admin:history_jobexecution_changelist") + "?q=") == 1
    table = html.split('<table class="recent-executions">')[1].split("</table>")[0]
    assert table.count("<tr>") == 21  # header + 20 runs
    assert '<strong class="schedule-success-rate">80.0 %</strong> of 25 finished runs' in html
    # The add page has no history section.
    assert b"recent-executions" not in admin_client.get(reverse("admin:schedules_schedule_add")).content
