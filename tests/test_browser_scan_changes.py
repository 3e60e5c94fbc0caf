"""Changes since the previous scan, end to end: two real browser scans of a
site that starts setting a tracker's cookie before consent, recorded as the
runtime records them, and the alert that follows."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import checks
from alerts.models import Alert
from history.models import JobExecution
from history.services import finish_execution
from schedules.scans.request import ScanRequest
from tests.history_factories import make_execution
from tests.scan_site import ScanSite
from tests.test_browser_scan import CHROMIUM, config

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="scripts/test.sh installs chromium")


def scan_and_record(runner, schedule, *, ago: timedelta) -> JobExecution:
    row = make_execution(schedule=schedule, status="running", now=timezone.now(), ago=ago, instance_id="me")
    found = runner(ScanRequest(schedule_id=schedule.pk, execution_id=row.pk, domain=schedule.domain,
                               domain_config_id=schedule.domain_config_id, scheduled_for=None,
                               scan_settings={"accept_selector": "#accept"}))
    assert finish_execution(execution_id=row.pk, status="success", started_at=row.started_at, instance_id="me",
                            metadata=found.metadata)
    return JobExecution.objects.get(pk=row.pk)


def test_a_tracker_moving_before_consent_is_a_change_and_alerts(make_schedule):
    from schedules.scans.browser import BrowserScanner

    runner = BrowserScanner(config())
    try:
        with ScanSite() as site:
            schedule = make_schedule(domain=site["site"].domain, domain_config_id=f"diff-{uuid.uuid4()}")
            first = scan_and_record(runner, schedule, ago=timedelta(minutes=2))
            assert first.metadata["changes"]["since"] is None  # the baseline
            site.ads_before_consent = True
            second = scan_and_record(runner, schedule, ago=timedelta(minutes=1))
    finally:
        runner.close()
    changes = second.metadata["changes"]
    assert changes["since"] == str(first.pk)
    moved = {c["name"] for c in changes["moved_before_consent"]}
    assert {"ads_id", "_fbp"} <= moved and not changes["gone"]
    assert checks.check_new_cookies_before_consent(finished_within=timedelta(minutes=5)) == 1
    alert = Alert.objects.get(kind="new_cookie_before_consent")
    assert alert.title.startswith(f"A new cookie is set before consent on {site['site'].domain}")
    assert "ads_id" in alert.title
