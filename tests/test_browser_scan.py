"""The browser scanner against a local site of several origins (tests/scan_site.py), in real Chromium."""

from __future__ import annotations

import ipaddress
import os
import signal
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from scanner_project.outbound.http import DeadlineExceeded
from schedules.scans.browser import BrowserConfig, BrowserScanner
from schedules.scans.request import ScanRefused, ScanRequest
from schedules.scans.retries import run_with_retries
from tests.scan_site import ScanSite
from tests.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="scripts/test.sh installs chromium")


def config(*networks: str, deadline: float = 30.0) -> BrowserConfig:
    return BrowserConfig(executable=CHROMIUM, deadline=deadline, scheme="http", allow_private=False,
                         allowed_networks=tuple(ipaddress.ip_network(n) for n in networks or ("127.0.0.0/8",)),
                         connect_timeout=5.0)


@pytest.fixture(scope="module")
def site():
    with ScanSite() as running:
        yield running


@pytest.fixture(scope="module")
def scanner():
    runner = BrowserScanner(config())
    yield runner
    runner.close()


def scan(runner, domain: str, **scan_settings) -> dict:
    request = ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain=domain, domain_config_id="cfg",
                          scheduled_for=datetime(2026, 12, 1, tzinfo=timezone.utc), scan_settings=scan_settings)
    result = runner(request)
    assert result.metadata["runner"] == "browser"
    return result.metadata["scan"]


def by_name(found: dict) -> dict[str, dict]:
    return {cookie["name"]: cookie for cookie in found["cookies"]}


def test_cookies_from_headers_and_from_javascript(site, scanner):
    found = scan(scanner, site["site"].domain)
    cookies = by_name(found)
    assert cookies["sid"]["http_only"] is True and cookies["sid"]["same_site"] == "Lax"  # Set-Cookie
    assert {"_ga", "_gid", "_tracker_js"} <= set(cookies)  # document.cookie, inline and from the tracker's script
    assert cookies["_ga"]["expires"] is not None and cookies["sid"]["expires"] is None
    assert datetime.fromisoformat(cookies["_ga"]["expires"]) > datetime.now(timezone.utc)
    assert cookies["sid"]["domain"] == "127.0.0.1" and cookies["sid"]["path"] == "/"
    assert found["pages"] == [{"url": f"{site['site'].origin}/", "depth": 0, "status": 200}]


def test_third_party_by_registrable_domain(site, scanner):
    found = scan(scanner, site["site"].domain)
    cookies = by_name(found)
    assert cookies["tp_uid"]["domain"] == "127.0.0.2" and cookies["tp_uid"]["third_party"] is True
    assert cookies["_tracker_js"]["third_party"] is False  # set by a third party's script, in the first party's jar
    hosts = {(r["host"], r["third_party"]) for r in found["requests"]}
    assert ("127.0.0.1", False) in hosts and ("127.0.0.2", True) in hosts


def test_before_and_after_consent(site, scanner):
    found = scan(scanner, site["site"].domain, accept_selector="#accept")
    assert found["consent"] == {"selector": "#accept", "found": True, "clicked": True}
    phases = {name: cookie["phase"] for name, cookie in by_name(found).items()}
    assert {phases[n] for n in ("sid", "_ga", "_gid", "tp_uid", "_tracker_js")} == {"before_consent"}
    assert {phases[n] for n in ("consent", "_fbp", "ads_id")} == {"after_consent"}
    requests = {(r["host"], r["phase"]) for r in found["requests"]}
    assert ("127.0.0.2", "before_consent") in requests and ("127.0.0.2", "after_consent") in requests
    assert len(by_name(found)) == 8


def test_without_a_click_everything_is_before_consent_and_the_banner_is_left_alone(site, scanner):
    found = scan(scanner, site["site"].domain, accept_selector="#no-such-button")
    assert found["consent"] == {"selector": "#no-such-button", "found": False, "clicked": False}
    assert "consent" not in by_name(found) and "ads_id" not in by_name(found)
    assert {c["phase"] for c in found["cookies"]} == {"before_consent"}


def test_a_common_consent_manager_is_found_without_a_selector(site, scanner):
    found = scan(scanner, site["cmp"].domain)
    assert found["consent"]["found"] is True and found["consent"]["clicked"] is True
    assert found["consent"]["manager"] == "OneTrust"
    assert by_name(found)["OptanonAlertBoxClosed"]["phase"] == "after_consent"


def test_local_storage_before_and_after_consent(site, scanner):
    found = scan(scanner, site["site"].domain, accept_selector="#accept")
    storage = {(s["origin"], s["key"]): s["phase"] for s in found["storage"]}
    assert storage[(site["site"].origin, "ga_client")] == "before_consent"
    assert storage[(site["site"].origin, "consent_at")] == "after_consent"


def test_depth_follows_links_breadth_first_within_scan_depth(site, scanner):
    found = scan(scanner, site["site"].domain, allow_deep_scan=True, scanDepth=2)
    origin = site["site"].origin
    assert [(p["url"], p["depth"]) for p in found["pages"]] == [
        (f"{origin}/", 0), (f"{origin}/level1", 1), (f"{origin}/level2", 2)]
    cookies = by_name(found)
    assert "lvl2" in cookies and "depth3" not in cookies
    assert not any("elsewhere" in p["url"] for p in found["pages"])  # another site's link is not followed


def test_max_pages_caps_the_pages_of_a_scan(site, scanner):
    found = scan(scanner, site["site"].domain, allow_deep_scan=True, scanDepth=5, maxPages=2)
    assert [p["depth"] for p in found["pages"]] == [0, 1]
    deeper = scan(scanner, site["site"].domain, allow_deep_scan=True, scanDepth=5, maxPages=10)
    assert [p["depth"] for p in deeper["pages"]] == [0, 1, 2, 3] and "depth3" in by_name(deeper)


def test_without_deep_scan_only_the_home_and_custom_pages(site, scanner):
    found = scan(scanner, site["site"].domain, allow_deep_scan=False, scanDepth=5, customPages=["/custom"])
    origin = site["site"].origin
    assert [p["url"] for p in found["pages"]] == [f"{origin}/", f"{origin}/custom"]
    assert "custom_page" in by_name(found) and "lvl1" not in by_name(found)


def test_custom_pages_are_visited_in_a_deep_scan_too(site, scanner):
    found = scan(scanner, site["site"].domain, allow_deep_scan=True, scanDepth=1, customPages=["/custom"])
    urls = [p["url"] for p in found["pages"]]
    assert urls[:2] == [f"{site['site'].origin}/", f"{site['site'].origin}/custom"]
    assert f"{site['site'].origin}/level1" in urls and "custom_page" in by_name(found)


def test_forbidden_addresses_are_refused_while_the_site_is_allowed(site):
    runner = BrowserScanner(config("127.0.0.1/32"))
    tracker_hits = len(site["tracker"].hits)
    try:
        found = scan(runner, site["site"].domain, customPages=["/forbidden"])
    finally:
        runner.close()
    assert len(site["tracker"].hits) == tracker_hits  # 127.0.0.2 was never reached
    refused = {r["host"] for r in found["refused"]}
    assert {"127.0.0.2", "169.254.169.254"} <= refused
    assert "tp_uid" not in by_name(found) and "sid" in by_name(found)
    assert not {r["host"] for r in found["requests"]} & refused


def test_a_redirect_to_a_forbidden_address_refuses_the_scan(site):
    runner = BrowserScanner(config("127.0.0.4/32"))
    tracker_hits = len(site["tracker"].hits)
    try:
        with pytest.raises(ScanRefused, match="127.0.0.2"):
            scan(runner, site["redirect"].domain)
        with pytest.raises(ScanRefused, match="169.254.169.254"):
            scan(runner, "169.254.169.254")
    finally:
        runner.close()
    assert len(site["tracker"].hits) == tracker_hits


def test_a_name_is_resolved_by_the_gateway_once_and_checked(site, monkeypatch):
    from scanner_project.outbound import addresses

    answers = {"shop.test": [("127.0.0.1",)], "mixed.test": [("127.0.0.1",), ("127.0.0.2",)]}
    resolved = []
    real = addresses.resolve

    def resolve(host, port):
        if host not in answers:
            return real(host, port)
        resolved.append(host)
        import socket

        return [(socket.AF_INET, (a[0], port)) for a in answers[host]]

    monkeypatch.setattr(addresses, "resolve", resolve)
    runner = BrowserScanner(config("127.0.0.1/32"))
    try:
        found = scan(runner, f"shop.test:{site['site'].port}")
        assert "sid" in by_name(found) and "shop.test" in resolved  # Chromium resolved nothing itself
        with pytest.raises(ScanRefused, match="127.0.0.2"):  # one bad address refuses the name
            scan(runner, f"mixed.test:{site['site'].port}")
    finally:
        runner.close()


@pytest.mark.parametrize("host", ["stall", "spin"])
def test_the_deadline_ends_a_page_that_never_finishes(site, host):
    runner = BrowserScanner(config(deadline=3.0))
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            scan(runner, site[host].domain)
        assert time.monotonic() - started < 3.0 + 8.0
        # The browser still scans afterwards (a banner found at once keeps this scan short).
        assert "sid" in by_name(scan(runner, site["site"].domain, accept_selector="#accept"))
    finally:
        runner.close()


def test_a_crashed_browser_fails_the_attempt_and_the_retry_runs_in_a_new_one(site):
    runner = BrowserScanner(config(deadline=20.0))
    try:
        scan(runner, site["site"].domain)
        first_pid = runner.browser_pid
        killed = threading.Event()

        def kill_during_the_scan():
            wait_until(lambda: len(site["stall"].hits) > stall_hits, timeout=20, message="the stalling page was asked for")
            os.killpg(first_pid, signal.SIGKILL)
            killed.set()

        stall_hits = len(site["stall"].hits)
        threading.Thread(target=kill_during_the_scan, daemon=True).start()
        request = ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain=site["stall"].domain,
                              domain_config_id="cfg", scheduled_for=None, scan_settings={})
        outcome = run_with_retries(runner=runner, request=request, max_retries=0, backoff=0, stop=threading.Event())
        assert killed.is_set() and outcome.result is None
        assert "DeadlineExceeded" not in outcome.attempts[0]["error"]  # failed at the crash, not at the deadline
        again = ScanRequest(schedule_id=uuid.uuid4(), execution_id=uuid.uuid4(), domain=site["site"].domain,
                            domain_config_id="cfg", scheduled_for=None, scan_settings={})
        outcome = run_with_retries(runner=runner, request=again, max_retries=1, backoff=0, stop=threading.Event())
        assert outcome.result is not None and runner.browser_pid != first_pid and runner.launches == 2
    finally:
        runner.close()


def test_close_leaves_no_chromium_process(site):
    runner = BrowserScanner(config())
    scan(runner, site["site"].domain)
    pid = runner.browser_pid
    assert len(_group(pid)) > 1  # the browser and its renderers, zygote, utilities
    runner.close()
    wait_until(lambda: not _group(pid), timeout=10, message=lambda: f"left: {_group(pid)}")


def _group(pgid: int) -> list[int]:
    """Live processes of the process group that Chromium leads."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found
