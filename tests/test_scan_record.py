"""The scan record's pieces: parties by the Public Suffix List, the page plan, and a scan API's answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from schedules.scans import result
from schedules.scans.parties import host_of, is_third_party, site_of
from schedules.scans.plan import Frontier, ScanPlan


def test_registrable_domains_come_from_the_public_suffix_list():
    assert site_of("www.example.co.uk") == site_of("cdn.example.co.uk") == "example.co.uk"
    assert site_of("a.github.io") != site_of("b.github.io")  # a private suffix: two sites
    assert site_of("127.0.0.1") == "127.0.0.1" and site_of("localhost") == "localhost"
    assert host_of("Example.COM:8443") == "example.com" and host_of("http://[::1]:80/x") == "::1"
    assert is_third_party("tracker.example.net", first_party_site="example.com")
    assert not is_third_party("static.example.com", first_party_site=site_of("www.example.com"))


def plan(**scan_settings) -> ScanPlan:
    return ScanPlan.of(domain="example.com", scheme="https", scan_settings=scan_settings)


def test_the_plan_takes_profile_defaults_and_the_home_page_first():
    defaults = plan()
    assert (defaults.deep, defaults.depth, defaults.max_pages, defaults.accept_selector) == (False, 5, 50, "")
    frontier = Frontier(plan(customPages=["/privacy", "not-a-path", 7]))
    assert [frontier.next(), frontier.next(), frontier.next()] == [
        ("https://example.com/", 0), ("https://example.com/privacy", 0), None]


def test_links_are_followed_within_depth_site_and_page_cap():
    frontier = Frontier(plan(allow_deep_scan=True, scanDepth=1, maxPages=4))
    url, depth = frontier.next()
    frontier.found_links(["/a", "/a#x", "https://cdn.example.com/b", "https://other.org/c", "mailto:x@example.com"],
                         on_page=url, depth=depth)
    second = frontier.next()
    frontier.found_links(["/deeper"], on_page=second[0], depth=second[1])  # past scanDepth
    assert [second, frontier.next(), frontier.next()] == [
        ("https://example.com/a", 1), ("https://cdn.example.com/b", 1), None]
    shallow = Frontier(plan(allow_deep_scan=False))
    shallow.found_links(["/a"], on_page="https://example.com/", depth=0)
    assert [shallow.next(), shallow.next()] == [("https://example.com/", 0), None]


def test_a_scan_api_answer_is_stored_in_the_contracts_shape():
    scan = result.from_answer({
        "pages": [{"url": "https://example.com/", "depth": 0, "status": 200}, "junk"],
        "cookies": [{"name": "_ga", "domain": ".example.com", "expires": 1893456000, "phase": "after_consent"},
                    {"name": "ads", "domain": "ads.tracker.net"}, {"domain": "no-name.example.com"}],
        "requests": [{"host": "ads.tracker.net"}], "consent": {"selector": "#ok", "found": True, "clicked": True},
    }, domain="www.example.com")
    cookies = {c["name"]: c for c in scan["cookies"]}
    assert set(cookies) == {"_ga", "ads"}
    assert cookies["_ga"]["expires"] == "2030-01-01T00:00:00+00:00" and cookies["_ga"]["third_party"] is False
    assert cookies["ads"]["third_party"] is True and cookies["ads"]["phase"] == "before_consent"
    assert set(cookies["ads"]) == set(result.COOKIE_FIELDS)
    assert scan["requests"] == [{"host": "ads.tracker.net", "phase": "before_consent", "third_party": True}]
    assert scan["storage"] == [] and scan["consent"] == {"selector": "#ok", "found": True, "clicked": True}
    assert result.from_answer(None, domain="example.com") is None and result.from_answer([1], domain="x.com") is None


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=20)
answer_parts = st.fixed_dictionaries({}, optional={
    "pages": st.lists(st.dictionaries(st.sampled_from(["url", "depth", "status"]), json_values), max_size=3) | json_values,
    "cookies": st.lists(st.dictionaries(st.sampled_from(list(result.COOKIE_FIELDS)), json_values), max_size=4)
    | json_values,
    "storage": st.lists(st.dictionaries(st.sampled_from(["origin", "key", "phase"]), json_values), max_size=3),
    "requests": st.lists(st.dictionaries(st.sampled_from(["host", "third_party", "phase"]), json_values), max_size=3),
    "consent": json_values,
})


@hypothesis_settings(max_examples=300, deadline=None)
@given(answer_parts)
def test_any_answer_becomes_a_record_of_the_contract_or_nothing(answer):
    scan = result.from_answer(answer, domain="www.example.com")
    assert set(scan) >= {"pages", "cookies", "storage", "requests", "consent"}
    for cookie in scan["cookies"]:
        assert set(cookie) == set(result.COOKIE_FIELDS) and cookie["phase"] in result.PHASES
        assert isinstance(cookie["third_party"], bool) and isinstance(cookie["name"], str)
        assert cookie["expires"] is None or isinstance(cookie["expires"], str)
    assert all(r["phase"] in result.PHASES and isinstance(r["host"], str) for r in scan["requests"])
    assert set(scan["consent"]) == {"selector", "found", "clicked"}
