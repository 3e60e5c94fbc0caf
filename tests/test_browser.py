"""The admin history pages in a real Chromium (Debian's, driven by Playwright)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from schedules.models import SchedulerInstance
from tests.history_factories import make_execution

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module", autouse=True)
def _allow_orm_beside_playwright():
    # Playwright's sync API runs an event loop in this thread; the ORM calls here
    # are plain synchronous test setup. Only for this module: a leaked variable
    # would fail `check --deploy` elsewhere (async.E001).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module", autouse=True)
def _close_pool_after_live_server():
    # The live server's threads hand their connections back to psycopg's pool,
    # which keeps them open; close it so the test database can be dropped.
    yield
    from django.db import connections

    connections["default"].close_pool()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture
def seeded(make_schedule):
    now = timezone.now()
    shop = make_schedule(domain="shop.example.com", time_config={"hour": 3, "minute": 0})
    blog = make_schedule(domain="blog.example.com", time_config={"hour": 4, "minute": 0})
    for day in range(14):
        for n in range(day % 4 + 1):
            make_execution(schedule=blog, status="success", now=now, ago=timedelta(days=day, hours=n + 1),
                           duration=20 + day * 3 + n)
    failed = make_execution(
        schedule=shop, status="failed", now=now, ago=timedelta(hours=1), duration=7.5,
        error_message="ConnectionError: shop.example.com refused",
        error_details={"type": "requests.exceptions.ConnectionError", "message": "refused",
                       "traceback": "Traceback (most recent call last):\n  File \"runners.py\", line 42, in run\n"
                                    "requests.exceptions.ConnectionError: refused"},
    )
    make_execution(schedule=shop, status="missed", now=now, ago=timedelta(days=2))
    SchedulerInstance.objects.create(instance_id="sched-a-101", host="sched-a", pid=101,
                                     started_at=now - timedelta(hours=5), last_seen=now)
    User.objects.create_superuser("operator", "operator@example.com", "a-long-browser-password")
    return failed


def _login(page, live_server):
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-browser-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard-link")


def test_dashboard_charts_and_numbers(page, live_server, seeded):
    _login(page, live_server)
    page.click("#dashboard-link a")
    page.wait_for_selector("#dashboard")
    assert page.locator("svg.chart").count() == 3  # outcomes, durations, start delay
    assert page.locator("svg.chart rect.bar").count() >= 14
    assert page.locator("svg.chart polyline.line-average").count() >= 1
    # 30 days: 33 successful, 1 failed, 1 missed.
    card = page.locator('.dash-card[data-window="30 days"]')
    assert card.locator(".total").inner_text() == "35"
    assert card.locator(".success-rate").inner_text() == "94.3"
    assert page.locator('.dash-card[data-window="24 hours"] .failed').inner_text() == "1"
    assert "shop.example.com" in page.locator("#failing").inner_text()
    assert "sched-a-101" in page.locator("#instances").inner_text()
    assert page.locator("#next-runs tbody tr").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_open_a_failed_execution_and_filter_by_status(page, live_server, seeded):
    _login(page, live_server)
    page.goto(f"{live_server.url}/admin/history/jobexecution/")
    assert page.locator("#result_list tbody tr").count() == 35
    page.locator("#changelist-filter").get_by_role("link", name="Failed").click()
    page.wait_for_url("**status__exact=failed**")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "ConnectionError: shop.example.com refused" in rows.first.inner_text()
    rows.first.locator("th a, td a").first.click()
    traceback = page.locator("pre.traceback")
    traceback.wait_for()
    assert "Traceback (most recent call last):" in traceback.inner_text()
    assert 'line 42, in run' in traceback.inner_text()
    assert page.locator("input[name=_save]").count() == 0


def test_filter_by_domain_input(page, live_server, seeded):
    _login(page, live_server)
    page.goto(f"{live_server.url}/admin/history/jobexecution/")
    page.get_by_label("domain").fill("shop.example.com")
    page.get_by_label("domain").press("Enter")
    page.wait_for_url("**domain=shop.example.com**")
    assert page.locator("#result_list tbody tr").count() == 2
