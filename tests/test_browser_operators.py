"""Issue 14 in a real Chromium at 1,280 x 800: pause and resume, the audit
trail, the alert list, re-running missed slots, and the first-time admin
fixes. Screenshots go to /tmp/shots-14/."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from alerts import checks
from alerts.models import AlertChannel, Delivery
from history.models import JobExecution
from pauses.models import SchedulePause
from tests.history_factories import make_execution
from tests.test_browser import _allow_orm_beside_playwright, _close_pool_after_live_server  # noqa: F401 - fixtures
from tests.test_browser import page as _tall_page  # noqa: F401 - a fixture, renamed: this module's page sets its size

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots-14")
WIDTH, HEIGHT = 1280, 800


@pytest.fixture
def page(_tall_page):  # noqa: F811 - the fixture imported above
    _tall_page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    return _tall_page


@pytest.fixture
def operator(live_server):
    User.objects.create_superuser("operator", "operator@example.com", "a-long-browser-password")


def login(page, live_server, path: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-browser-password")
    page.click("input[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def assert_fits(page) -> None:
    """Nothing scrolls sideways at 1,280 px: every column is on screen."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= WIDTH, f"page is {scroll} px wide"
    results = page.locator("#changelist .results")
    if results.count():
        # The list scrolls inside its box when its columns do not fit.
        inner, shown = results.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert inner <= shown, f"the list is {inner} px wide in a {shown} px box"
        last = page.locator("#result_list thead th").last.bounding_box()
        assert last["x"] + last["width"] <= WIDTH


def run_action(page, label: str, *schedules) -> None:
    for schedule in schedules:
        page.locator(f'input.action-select[value="{schedule.pk}"]').check()
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")
    page.wait_for_load_state("domcontentloaded")


def test_pause_with_a_note_then_resume(page, live_server, operator, make_schedule):
    shop = make_schedule(domain="shop.example.com")
    login(page, live_server, "/admin/schedules/schedule/")
    run_action(page, "Pause selected schedules (with a note)…", shop)
    assert "Pausing is not disabling" in page.inner_text(".action-intro")
    page.fill("textarea[name=reason]", "Shop migrates to a new CMP until Monday")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist .success")
    assert "Paused 1 schedule(s)" in page.inner_text(".messagelist")
    page.goto(f"{live_server.url}/admin/schedules/schedule/{shop.pk}/change/")
    record = page.locator("table.pause-record")
    assert "PAUSED" in record.inner_text() and "new CMP" in record.inner_text() and "operator" in record.inner_text()
    assert record.is_visible()
    shot(page, "pause-schedule-page")
    page.goto(f"{live_server.url}/admin/schedules/schedule/")
    run_action(page, "Resume selected schedules", shop)
    assert "Resumed 1 paused schedule(s)" in page.inner_text(".messagelist")
    assert SchedulePause.objects.get().resumed_by == "operator"


def test_audit_trail_on_the_schedule_page_and_in_the_list(page, live_server, operator, make_schedule):
    shop = make_schedule(domain="shop.example.com")
    login(page, live_server, f"/admin/schedules/schedule/{shop.pk}/change/")
    page.fill("textarea[name=time_config]", '{"hour": 5, "minute": 30}')
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    trail = page.locator("table.audit-trail")
    text = trail.inner_text()
    assert "user (admin form): operator" in text and "time_config" in text and '"hour": 5' in text
    trail.scroll_into_view_if_needed()
    shot(page, "audit-schedule-page")
    page.click("text=All changes")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2  # created, then edited
    assert_fits(page)
    shot(page, "audit-list")


def test_alert_list_shows_each_alert_and_its_deliveries(page, live_server, operator, make_schedule):
    AlertChannel.objects.create(kind="webhook", target="https://hooks.example.com/alerts")
    AlertChannel.objects.create(kind="email", target="ops@example.com")
    checks.check_queue_age(age_seconds=900.0, threshold_seconds=600)
    Delivery.objects.filter(channel__kind="email").update(status="sent", attempts=1, sent_at=timezone.now())
    Delivery.objects.filter(channel__kind="webhook").update(attempts=3, last_error="HTTPError: 503 Server Error")
    login(page, live_server, "/admin/alerts/alert/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1 and "Queue behind" in rows.first.inner_text()
    assert "sent (1 tries)" in rows.first.inner_text() and "pending (3 tries)" in rows.first.inner_text()
    assert_fits(page)
    shot(page, "alerts-list")
    page.goto(f"{live_server.url}/admin/alerts/delivery/")
    assert "HTTPError: 503" in page.inner_text("#result_list")
    assert_fits(page)
    shot(page, "alert-deliveries")


def test_rerun_missed_slots_action(page, live_server, operator, make_schedule):
    shop = make_schedule(domain="shop.example.com")
    now = timezone.now()
    for hours in (1, 2):
        make_execution(schedule=shop, status="missed", now=now, ago=timedelta(hours=hours), trigger="scheduled",
                       scheduled_for=now - timedelta(hours=hours), error_message="missed by 6 minutes")
    login(page, live_server, "/admin/schedules/schedule/")
    run_action(page, "Re-run missed slots…", shop)
    assert page.input_value("input[name=since]") and page.input_value("input[name=until]")
    shot(page, "rerun-form")
    page.click("input[type=submit].default")
    page.wait_for_selector(".messagelist .success")
    assert "Queued 2 missed slot(s) to run again" in page.inner_text(".messagelist")
    assert JobExecution.objects.filter(status="queued", trigger="manual").count() == 1  # one at a time
    assert JobExecution.objects.filter(status="missed").count() == 2
    shot(page, "rerun-done")


def test_first_time_admin_fixes(page, live_server, operator, make_schedule):
    every_minute = make_schedule(domain="a-rather-long-subdomain.shop.example.com", frequency="interval",
                                 time_config={"minutes": 1}, domain_config_id="cfg-2f1c9a7e-long-config-id")
    for n in range(3):
        make_schedule(domain=f"site{n}.example.com")
    now = timezone.now().replace(microsecond=0)
    make_execution(schedule=every_minute, status="success", now=now, ago=timedelta(minutes=10), duration=2.0,
                   scheduled_for=now - timedelta(minutes=14), trigger="scheduled")
    make_execution(schedule=every_minute, status="failed", now=now, ago=timedelta(minutes=3), duration=2.0,
                   error_message="ConnectionError: a-rather-long-subdomain.shop.example.com refused the connection "
                                 "after three attempts over thirty seconds")
    login(page, live_server, "/admin/schedules/schedule/")
    listing = page.inner_text("#result_list")
    assert "Every 1 minute" in listing and "Every 1 minutes" not in listing
    assert_fits(page)
    shot(page, "schedule-list")

    page.goto(f"{live_server.url}/admin/history/jobexecution/")
    listing = page.inner_text("#result_list")
    assert "started 4 minutes late" in listing
    assert_fits(page)
    shot(page, "execution-list")

    page.goto(f"{live_server.url}/admin/schedules/schedule/add/")
    assert "Invalid" not in page.inner_text("#content")
    assert page.input_value("input[name=domain_config_id]").startswith("manual-")
    assert "the API import never touches it" in page.inner_text("#content")
    page.fill("input[name=domain]", "new.example.com")
    page.select_option("select[name=frequency]", "daily")
    page.fill("textarea[name=time_config]", "{hour: 2")
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    errors = page.locator(".errorlist").all_inner_texts()
    assert errors == ["time_config: {hour: 2 is not valid JSON"], errors
    shot(page, "add-form-invalid-json")

    page.goto(f"{live_server.url}/admin/schedules/schedule/")
    page.click("text=Sync from API now")
    page.wait_for_selector(".messagelist .error")
    message = page.inner_text(".messagelist")
    assert "API sync is not set up" in message and "--url" not in message
    shot(page, "sync-not-configured")

    page.goto(f"{live_server.url}/admin/dashboard/")
    page.wait_for_selector("#dashboard")
    assert page.locator('.dash-card[data-window="24 hours"] .missed').count() == 1
    assert_fits(page)
    shot(page, "dashboard")
