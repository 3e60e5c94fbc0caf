"""One malformed entry never blocks the valid ones beside it, and never crashes the import.

The inputs of the red-team pass (1e309, 10**20 hours, year 9999 west of UTC,
deep nesting, 200,000 keys, NaN in an unknown key) and generated ones.
"""

import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from schedules.importer import client as api_client
from schedules.importer.apply import import_entries, sync_schedules_from_api
from schedules.models import Schedule
from tests.api_server import entry, send

pytestmark = pytest.mark.django_db

GOOD = json.dumps(entry("good-1", "good.example.com")).encode()


def answer_with(bad_entry_json: bytes) -> bytes:
    return b'{"data": [' + GOOD + b", " + bad_entry_json + b"]}"


def raw(body: bytes):
    return lambda handler, server: send(handler, 200, body)


BAD_ENTRIES = [
    pytest.param(b'{"domain_config_id": "bad", "data": {"domain": "b.example.com", "maxPages": 1e309, '
                 b'"schedule": {"frequency": "daily", "time": {"hour": 2, "minute": 0}}}}',
                 "bad.data.maxPages: inf is not a finite number", id="maxpages-1e309"),
    pytest.param(json.dumps(entry("bad", schedule={"frequency": "interval", "time": {"hours": 10**20}})).encode(),
                 "bad.data.schedule.time.hours: 100000000000000000000 is out of range", id="interval-10e20-hours"),
    pytest.param(json.dumps(entry("bad", schedule={"frequency": "interval", "time": {"hours": 10**15}})).encode(),
                 "bad: time_config: interval of 3600000000000000000 seconds is longer than", id="interval-past-timedelta"),
    pytest.param(json.dumps(entry("bad", schedule={"frequency": "once", "timezone": "Etc/GMT+12",
                                                   "time": {"at": "9999-12-31T23:59:59"}})).encode(),
                 "bad: time_config.at: '9999-12-31T23:59:59' is too far in the future", id="once-year-9999"),
    pytest.param(json.dumps(entry("bad", extra=json.loads("[" * 200 + "]" * 200))).encode(),
                 "bad.data.extra", id="nesting-200"),
    pytest.param(json.dumps(entry("bad", extra={f"k{n}": n for n in range(200_000)})).encode(),
                 "bad: has more than 10000 keys and items in all", id="200000-keys"),
    pytest.param(b'{"domain_config_id": "bad", "data": {"domain": "b.example.com", "unknownKey": NaN, '
                 b'"schedule": {"frequency": "daily", "time": {"hour": 2, "minute": 0}}}}',
                 "bad.data.unknownKey: nan is not a finite number", id="nan-in-unknown-key"),
    pytest.param(json.dumps(entry("bad", note="nul\x00byte")).encode(), "bad.data.note: 'nul\\x00byte' contains a NUL",
                 id="nul-character"),
]


@pytest.mark.parametrize("bad, reason", BAD_ENTRIES)
def test_a_bad_entry_is_rejected_with_its_reason_and_the_valid_one_imports(api_server, sync_settings, bad, reason):
    sync_settings.HTTP_MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # the default: 200,000 keys take 3.5 MB
    result = sync_schedules_from_api(url=api_server.serve("/mixed", raw(answer_with(bad))))
    assert result["created"] == 1 and list(Schedule.objects.values_list("domain_config_id", flat=True)) == ["good-1"]
    assert len(result["rejected"]) == 1 and result["rejected"][0].startswith(reason), result["rejected"]


def test_an_answer_nested_3000_deep_is_a_bad_answer_with_a_clear_message(api_server, sync_settings):
    url = api_server.serve("/deep", raw(answer_with(b"[" * 3000 + b"]" * 3000)))
    with pytest.raises(api_client.ApiBadAnswer, match="nested too deeply to read"):
        sync_schedules_from_api(url=url)
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("bad, reason", BAD_ENTRIES)
def test_sync_from_api_now_reports_bad_entries_instead_of_failing(admin_client, api_server, sync_settings, bad, reason):
    sync_settings.HTTP_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
    sync_settings.API_URL = api_server.serve("/mixed", raw(answer_with(bad)))
    response = admin_client.post(reverse("admin:schedules_schedule_sync"), follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("created 1" in m for m in shown) and any(reason in m for m in shown), shown


def test_sync_from_api_now_reports_a_too_deep_answer(admin_client, api_server, sync_settings):
    sync_settings.API_URL = api_server.serve("/deep", raw(answer_with(b"[" * 3000 + b"]" * 3000)))
    response = admin_client.post(reverse("admin:schedules_schedule_sync"), follow=True)
    assert response.status_code == 200
    assert any("nested too deeply" in str(m) for m in response.context["messages"])


# --- generated entries -----------------------------------------------------------------------

EXTREMES = [float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 10**20, 2**63, -(2**63), 2**53 + 1,
            "\x00", "\ud800", "a\nb\x1b[0m", "EXAMPLE.\u212aOM", "x" * 5000]
control_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF) | st.sampled_from("\u212a\ud800"),
                       max_size=20)
json_scalars = st.one_of(st.sampled_from(EXTREMES), st.none(), st.booleans(), control_text,
                         st.integers(min_value=-(2**70), max_value=2**70), st.floats())
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(control_text, inner, max_size=4), max_leaves=30)
numbers = st.sampled_from(EXTREMES[:9]) | st.integers(min_value=-(2**70), max_value=2**70)


def deep(value, levels: int):
    for _ in range(levels):
        value = {"x": value}
    return value


times = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["hour", "minute", "day", "hours", "minutes", "seconds", "at", "expression"]),
                    numbers | st.just("9999-12-31T23:59:59") | st.just("monday") | control_text, max_size=3),
)
schedules = st.fixed_dictionaries(
    {"frequency": st.sampled_from(["daily", "interval", "once", "weekly", "monthly", "cron", "hourly", "x"])},
    optional={"time": times, "timezone": st.sampled_from(["UTC", "Etc/GMT+12", "Etc/GMT-14"]) | json_values},
)
datas = st.fixed_dictionaries(
    {"domain": st.sampled_from(["ok.example.com", "example.com\n", "EXAMPLE.\u212aOM"]) | control_text,
     "schedule": schedules | json_values},
    optional={"maxPages": numbers | json_values, "scanDepth": numbers, "customPages": json_values,
              "accept_selector": json_values, "junk": json_values,
              "nested": st.integers(min_value=0, max_value=60).map(lambda n: deep(1, n))},
)
ids = st.integers(min_value=0, max_value=10**6).map(lambda n: f"gen-{n}") | control_text.map(lambda s: "gen-" + s)
bad_entries = st.one_of(json_values, st.fixed_dictionaries({"domain_config_id": ids, "data": datas | json_values}))


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])
@given(generated=st.lists(bad_entries, max_size=3))
def test_generated_entries_never_raise_never_store_a_rejected_one_and_never_block_valid_ones(generated):
    valid = [entry("valid-a", "a.example.com"), entry("valid-b", "b.example.com", maxPages=3)]
    Schedule.objects.all().delete()
    result = import_entries(entries=[valid[0], *generated, valid[1]])
    outcomes = (result["created"] + result["updated"] + result["skipped"] + len(result["rejected"])
                + len(result["held_back"]))
    assert outcomes == len(generated) + 2  # each entry counted once
    stored = set(Schedule.objects.values_list("domain_config_id", flat=True))
    assert {"valid-a", "valid-b"} <= stored
    for dcid in stored - {"valid-a", "valid-b"}:
        assert not any(reason.startswith((f"{dcid}:", f"{dcid}.")) for reason in result["rejected"]), dcid
        Schedule.objects.get(domain_config_id=dcid).full_clean()  # whatever was stored is valid
