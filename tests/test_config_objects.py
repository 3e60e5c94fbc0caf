"""The settings of alerts and of the API import reach their code through one
object each (AlertConfig, ImporterConfig), built once per process and again
after a settings override; neither shows a secret in its repr."""

import re
from pathlib import Path

import pytest

from alerts.config import AlertConfig, alert_config
from schedules.importer.config import ImporterConfig, importer_config

ROOT = Path(__file__).resolve().parent.parent


def test_only_the_config_builders_read_settings_in_alerts_and_the_importer():
    found = set()
    for folder in ("alerts", "schedules/importer"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "config.py":
                continue
            for line in path.read_text().splitlines():
                code = line.split("#", 1)[0]
                found |= {(str(path.relative_to(ROOT)), m) for m in re.findall(r"\bsettings\.\w+", code)}
    assert found == set()


def test_built_once_and_again_after_a_settings_override(settings):
    assert alert_config() is alert_config() and importer_config() is importer_config()
    settings.ALERT_RATE_LIMIT = 7
    settings.ALERT_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    settings.API_SYNC_RETRIES = 0
    settings.TIME_ZONE = "Europe/Berlin"
    assert alert_config().rate_limit == 7 and [str(n) for n in alert_config().allowed_networks] == ["10.20.0.0/16"]
    assert (importer_config().retries, importer_config().default_timezone) == (0, "Europe/Berlin")


def test_a_built_config_is_frozen():
    with pytest.raises(AttributeError):
        alert_config().rate_limit = 1
    with pytest.raises(AttributeError):
        importer_config().retries = 1


def test_no_secret_in_a_repr(settings):
    settings.ALERT_WEBHOOK_URLS = ["https://hooks.slack.com/services/T0/B0/slack-path-secret"]
    settings.API_URL = "https://importer:url-password@api.example.com/s?api_key=query-secret"
    settings.API_TOKEN = "token-secret"
    shown = repr(AlertConfig.from_settings()) + repr(ImporterConfig.from_settings())
    assert not re.search("slack-path-secret|url-password|query-secret|token-secret", shown)
    assert importer_config().api_token == "token-secret" and alert_config().webhook_urls[0].endswith("secret")
