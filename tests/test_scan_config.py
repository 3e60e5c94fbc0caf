"""ScanConfig: the settings reach the scan runners once, when get_runner builds them.
Real HTTP servers on 127.0.0.1 (tests/api_server.py) show what a built runner does.
"""

from __future__ import annotations

import ast
import importlib
import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from schedules import scans
from schedules.scans import ScannerUnavailable, get_runner
from schedules.scans.browser import BrowserConfig, BrowserScanner
from schedules.scans.config import ScanConfig
from schedules.scans.http_api import ScanApiClient, close_pool
from schedules.scans.probe import ProbeScanner
from schedules.scans.request import ScanRefused, noop_runner
from tests.api_server import send
from tests.test_runners import host_of, request_for, with_cookies

SCANS = Path(scans.__file__).parent


@pytest.fixture
def probe_settings(settings):
    settings.PROBE_SCHEME, settings.PROBE_ALLOW_PRIVATE = "http", True
    settings.REQUEST_TIMEOUT, settings.SCAN_DEADLINE = 1, 3
    settings.SCAN_API_TOKEN = "scan-token-never-logged"
    return settings


@pytest.fixture
def pool():
    close_pool()  # the scan API's pool is the process's: start and end without one
    yield
    close_pool()


def test_a_runner_keeps_the_config_it_was_built_with(api_server, probe_settings):
    probe_settings.SCAN_RUNNER = "probe"
    api_server.serve("/", with_cookies("sid=1; Path=/"))
    built_before = get_runner()
    probe_settings.PROBE_ALLOW_PRIVATE = False  # after the build: the built runner reads no setting
    result = built_before(request_for(host_of(api_server)))
    assert [c["name"] for c in result.metadata["scan"]["cookies"]] == ["sid"]
    built_after = get_runner()  # sees the override
    with pytest.raises(ScanRefused, match="PROBE_ALLOW_PRIVATE"):
        built_after(request_for(host_of(api_server)))


def test_a_scan_api_client_posts_where_its_config_says(api_server, probe_settings, pool):
    first = api_server.serve("/first", lambda h, s: send(h, 201, b'{"scan_id": "at-first"}'))
    api_server.serve("/second", lambda h, s: send(h, 201, b'{"scan_id": "at-second"}'))
    probe_settings.SCAN_RUNNER, probe_settings.SCAN_API_URL = "", first
    client = get_runner()
    assert isinstance(client, ScanApiClient)
    probe_settings.SCAN_API_URL, probe_settings.SCAN_API_TOKEN = api_server.url("/second"), "a-later-token"
    assert client(request_for("example.com")).scan_id == "at-first"
    assert api_server.authorization[-1] == "Bearer scan-token-never-logged"
    assert get_runner()(request_for("example.com")).scan_id == "at-second"
    assert api_server.authorization[-1] == "Bearer a-later-token"


def test_a_config_passed_in_is_used_and_the_settings_are_not_read(settings):
    settings.SCAN_RUNNER, settings.SCAN_API_URL = "", ""
    config = replace(ScanConfig.from_settings(), runner="probe", scheme="http", deadline=7.0)
    runner = get_runner(config=config)
    assert isinstance(runner, ProbeScanner) and runner.config is config
    assert get_runner(config=replace(config, runner="", api_url="http://scan.internal/")).config.api_url == \
        "http://scan.internal/"


@pytest.mark.parametrize(("path", "kind"), [
    ("schedules.runners.probe_runner", ProbeScanner),
    ("schedules.runners.http_runner", ScanApiClient),
    ("schedules.scans.probe.probe_runner", ProbeScanner),
    ("schedules.scans.http_api.http_runner", ScanApiClient),
])
def test_paths_of_the_built_in_runners_build_them_from_the_config(settings, path, kind):
    settings.SCAN_RUNNER = path
    assert isinstance(get_runner(), kind)


def test_the_old_paths_resolve_without_the_old_module(settings):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("schedules.runners")
    settings.SCAN_RUNNER = "schedules.runners.noop_runner"
    assert get_runner() is noop_runner


def test_the_browser_takes_its_part_of_the_config(settings):
    settings.SCAN_RUNNER, settings.SCAN_API_URL = "browser", ""
    settings.SCAN_BROWSER_PATH = "/nowhere/chromium"
    settings.PROBE_ALLOWED_NETWORKS, settings.REQUEST_TIMEOUT, settings.SCAN_DEADLINE = ["10.9.0.0/16"], 4.0, 60.0
    runner = get_runner()
    assert isinstance(runner, BrowserScanner)
    assert runner.config == BrowserConfig(
        executable="/nowhere/chromium", deadline=60.0, scheme=settings.PROBE_SCHEME,
        allow_private=settings.PROBE_ALLOW_PRIVATE, allowed_networks=(ipaddress.ip_network("10.9.0.0/16"),),
        connect_timeout=4.0,
    )
    with pytest.raises(ScannerUnavailable, match="/nowhere/chromium"):
        scans.preflight(runner)


def test_the_scan_api_token_is_not_in_the_configs_repr(settings):
    settings.SCAN_API_TOKEN = "scan-token-3c1e"
    config = ScanConfig.from_settings()
    assert config.api_token == "scan-token-3c1e" and "scan-token-3c1e" not in repr(config)


def test_only_the_config_module_reads_django_settings():
    readers = []
    for module in sorted(SCANS.glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            imports_settings = isinstance(node, ast.ImportFrom) and node.module == "django.conf" and \
                any(alias.name == "settings" for alias in node.names)
            if imports_settings or (isinstance(node, ast.Import) and any(a.name == "django.conf" for a in node.names)):
                readers.append(module.name)
    assert readers == ["config.py"]
