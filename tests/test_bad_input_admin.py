"""Bad input through the admin, as a superuser: a field error that names the value,
and no stored row changed (schedules, scan_profiles, job_executions)."""

import pytest
from django.urls import reverse

from tests.stored_rows import snapshot

pytestmark = pytest.mark.django_db

DAILY = '{"hour": 2, "minute": 0}'

# (form overrides, field with the error, fragment of its message)
SCHEDULE_CASES = [
    pytest.param({"time_config": '{"hour": 24, "minute": 0}'}, "time_config", "time_config.hour: 24 is out of range 0-23",
                 id="hour-24"),
    pytest.param({"time_config": '{"hour": 2, "minute": 60}'}, "time_config", "time_config.minute: 60 is out of range 0-59",
                 id="minute-60"),
    pytest.param({"frequency": "weekly", "time_config": '{"day": "funday", "hour": 2, "minute": 0}'}, "time_config",
                 "time_config.day: 'funday' is not a weekday", id="weekday-funday"),
    pytest.param({"frequency": "monthly", "time_config": '{"day": 32, "hour": 2, "minute": 0}'}, "time_config",
                 "time_config.day: 32 is not a day of month", id="month-day-32"),
    pytest.param({"timezone": "Europe/Atlantis"}, "timezone", "timezone: 'Europe/Atlantis' is not an IANA time zone",
                 id="unknown-timezone"),
    pytest.param({"time_config": '{"hour": 2,'}, "time_config", 'time_config: {"hour": 2, is not valid JSON',
                 id="time-config-malformed-json"),
    pytest.param({"scan_settings": '{"maxPages": 5'}, "scan_settings", 'scan_settings: {"maxPages": 5 is not valid JSON',
                 id="scan-settings-malformed-json"),
    pytest.param({"scan_settings": "[1, 2]"}, "scan_settings", "scan_settings: [1, 2] is not an object",
                 id="scan-settings-list"),
    pytest.param({"scan_settings": '{"maxPages": "fifty"}'}, "scan_settings", "scan_settings.maxPages: 'fifty'",
                 id="scan-settings-maxpages-text"),
    pytest.param({"scan_settings": '{"customPages": ["privacy"]}'}, "scan_settings",
                 "scan_settings.customPages: ['privacy'] must be a list of paths", id="scan-settings-custom-pages"),
    pytest.param({"frequency": "cron", "time_config": '{"expression": "0 0 * * * *"}'}, "time_config",
                 "time_config.expression: '0 0 * * * *' has 6 fields; a crontab has five", id="cron-six-fields"),
    pytest.param({"frequency": "daily", "time_config": '{"expression": "0 0 * * *"}'}, "time_config",
                 "time_config.expression: is not a setting of a daily schedule", id="key-of-other-frequency"),
    pytest.param({"domain": "example.com/path"}, "domain", "domain: 'example.com/path' is not a host name",
                 id="domain-with-path"),
    pytest.param({"domain": "https://example.com"}, "domain", "domain: 'https://example.com' is not a host name",
                 id="domain-with-scheme"),
    pytest.param({"domain": "exa mple.com"}, "domain", "domain: 'exa mple.com' is not a host name",
                 id="domain-with-space"),
    pytest.param({"frequency": "fortnightly"}, "frequency", "fortnightly is not one of the available choices",
                 id="frequency-not-in-list"),
    pytest.param({"domain_config_id": "cfg-b"}, "domain_config_id", "domain_config_id: 'cfg-b' is already used",
                 id="duplicate-domain-config-id"),
    pytest.param({"domain_config_id": "   "}, "domain_config_id", "This field is required",
                 id="domain-config-id-only-spaces"),
    # The red-team inputs that used to raise OverflowError, ValueError or RecursionError (HTTP 500).
    pytest.param({"scan_settings": '{"maxPages": 1e309}'}, "scan_settings",
                 "scan_settings.maxPages: inf is not a finite number", id="maxpages-1e309"),
    pytest.param({"frequency": "interval", "time_config": '{"hours": 100000000000000000000}'}, "time_config",
                 "time_config.hours: 100000000000000000000 is out of range", id="interval-10e20-hours"),
    pytest.param({"frequency": "interval", "time_config": '{"hours": 1000000000000000}'}, "time_config",
                 "is longer than", id="interval-past-timedelta"),
    pytest.param({"frequency": "once", "time_config": '{"at": "9999-12-31T23:59:59"}', "timezone": "Etc/GMT+12"},
                 "time_config", "time_config.at: '9999-12-31T23:59:59' is too far in the future", id="once-year-9999"),
    pytest.param({"scan_settings": "[" * 3000 + "]" * 3000}, "scan_settings", "(nested too deeply) is not valid JSON",
                 id="nesting-3000"),
    pytest.param({"scan_settings": '{"a":' * 30 + "1" + "}" * 30}, "scan_settings", "is nested deeper than 16 levels",
                 id="nesting-30"),
    pytest.param({"scan_settings": "{" + ",".join(f'"k{n}": 0' for n in range(20000)) + "}"}, "scan_settings",
                 "has more than 10000 keys", id="20000-keys"),
    pytest.param({"scan_settings": '{"unknownKey": NaN}'}, "scan_settings",
                 "scan_settings.unknownKey: nan is not a finite number", id="nan-in-unknown-key"),
]


def _schedule_form(**overrides):
    data = {"domain_config_id": "cfg-new", "domain": "new.example.com", "profile": "", "enabled": "on",
            "frequency": "daily", "time_config": DAILY, "timezone": "UTC", "scan_settings": "{}"}
    return data | overrides


def _errors(response, field):
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    assert field in form.errors, dict(form.errors)
    return " ".join(form.errors[field])


@pytest.mark.parametrize("view", ["add", "change"])
@pytest.mark.parametrize("overrides, field, fragment", SCHEDULE_CASES)
def test_schedule_form_rejects_bad_value_naming_it_and_changes_nothing(admin_client, stored, view, overrides, field,
                                                                       fragment):
    if view == "add":
        url = reverse("admin:schedules_schedule_add")
    else:
        url = reverse("admin:schedules_schedule_change", args=[stored["a"].pk])
        overrides = {"domain_config_id": "cfg-a", "domain": "a.example.com", **overrides}
    response = admin_client.post(url, _schedule_form(**overrides))
    assert fragment in _errors(response, field)
    assert snapshot() == stored["snapshot"]


PROFILE_CASES = [
    pytest.param({"custom_pages": '["/a"'}, "custom_pages", 'custom_pages: ["/a" is not valid JSON', id="malformed-json"),
    pytest.param({"custom_pages": '["privacy"]'}, "custom_pages", "custom_pages: ['privacy'] must be a list of paths",
                 id="path-without-slash"),
    pytest.param({"custom_pages": '"/privacy"'}, "custom_pages", "custom_pages: '/privacy' must be a list of paths",
                 id="string-not-list"),
    pytest.param({"max_pages": "-1"}, "max_pages", "greater than or equal to 0", id="negative-max-pages"),
    pytest.param({"max_pages": "many"}, "max_pages", "Enter a whole number", id="max-pages-text"),
    pytest.param({"name": "deep"}, "name", "Scan profile with this Name already exists", id="duplicate-name"),
    pytest.param({"name": ""}, "name", "This field is required", id="empty-name"),
]


def _profile_form(**overrides):
    data = {"name": "new", "description": "", "max_pages": "20", "scan_depth": "3", "max_retries": "2",
            "custom_pages": '["/privacy"]', "accept_selector": ""}
    return data | overrides


@pytest.mark.parametrize("view", ["add", "change"])
@pytest.mark.parametrize("overrides, field, fragment", PROFILE_CASES)
def test_scan_profile_form_rejects_bad_value_and_changes_nothing(admin_client, stored, view, overrides, field, fragment):
    if view == "add":
        url = reverse("admin:schedules_scanprofile_add")
    else:
        url = reverse("admin:schedules_scanprofile_change", args=[stored["profile"].pk])
        overrides = {"name": "standard", **overrides}
    response = admin_client.post(url, _profile_form(**overrides))
    assert fragment in _errors(response, field)
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("action", ["enable_schedules", "disable_schedules", "run_now", "no_such_action"])
@pytest.mark.parametrize("selected", [["not-a-uuid"], ["00000000-0000-0000-0000-000000000000"], []])
def test_schedule_actions_with_bad_selection_change_nothing(admin_client, stored, action, selected):
    response = admin_client.post(reverse("admin:schedules_schedule_changelist"),
                                 {"action": action, "_selected_action": selected}, follow=True)
    assert response.status_code == 200
    if selected == ["not-a-uuid"] and action != "no_such_action":
        assert "_selected_action: 'not-a-uuid' is not an id" in " ".join(str(m) for m in response.context["messages"])
    assert snapshot() == stored["snapshot"]


def test_profile_delete_action_with_bad_selection_changes_nothing(admin_client, stored):
    response = admin_client.post(reverse("admin:schedules_scanprofile_changelist"),
                                 {"action": "delete_selected", "_selected_action": ["1; DROP TABLE scan_profiles"],
                                  "post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "_selected_action: &#x27;1; DROP TABLE scan_profiles&#x27; is not an id" in response.content.decode()
    assert snapshot() == stored["snapshot"]


@pytest.mark.parametrize("path", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_change_view_of_a_bad_or_unknown_id_changes_nothing(admin_client, stored, path):
    url = reverse("admin:schedules_schedule_changelist") + f"{path}/change/"
    response = admin_client.post(url, _schedule_form(), follow=True)
    assert response.status_code in (200, 404)
    assert snapshot() == stored["snapshot"]
