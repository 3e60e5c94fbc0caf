"""What changed since the last scan: the comparison, where it is stored, how
admin shows it, and the "new cookie before consent" alert. Rows are written
directly or finished through history.services.finish_execution, against the
real PostgreSQL."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from alerts import checks
from alerts.delivery import dispatch_all
from alerts.loop import evaluate
from alerts.models import Alert
from history.models import JobExecution
from history.scan_changes import compare_cookies, cookie_identity
from history.services import finish_execution
from tests.history_factories import make_execution
from tests.test_alerts import hook  # noqa: F401 - a fixture: the webhook channel

BEFORE, AFTER = "before_consent", "after_consent"
BASELINE = {"since": None, "new": [], "gone": [], "moved_before_consent": []}


def cookie(name, phase=BEFORE, *, domain="shop.example", path="/", **fields):
    return {"name": name, "domain": domain, "path": path, "expires": None, "secure": False, "http_only": False,
            "same_site": "Lax", "third_party": False, "phase": phase, **fields}


def scan(*cookies, **parts):
    return {"site": "shop.example", "pages": [{"url": "https://shop.example/", "depth": 0, "status": 200}],
            "cookies": list(cookies), "storage": [], "requests": [],
            "consent": {"selector": "", "found": False, "clicked": False}, **parts}


def names(cookies):
    return [c["name"] for c in cookies]


def run(schedule, *, ago, found=None, status="success"):
    """A run of ``schedule`` that started ``ago``, finished as the runtime
    finishes it; ``found`` is the scan it recorded (None: no scan)."""
    row = make_execution(schedule=schedule, status="running", now=timezone.now(), ago=ago, instance_id="me")
    metadata = {"runner": "test", **({"scan": found} if found is not None else {})}
    assert finish_execution(execution_id=row.pk, status=status, started_at=row.started_at, instance_id="me",
                            metadata=metadata)
    return JobExecution.objects.get(pk=row.pk)


def execution_page(client, execution):
    response = client.get(reverse("admin:history_jobexecution_change", args=[execution.pk]))
    assert response.status_code == 200
    return response.content.decode()


# --- the comparison --------------------------------------------------------------
def test_new_gone_and_moved_before_consent():
    previous = [cookie("sid"), cookie("_ga", AFTER, domain=".shop.example"), cookie("old"),
                cookie("ads", AFTER, domain=".tracker.example"), cookie("late")]
    current = [cookie("sid", expires="2027-01-01T00:00:00+00:00", secure=True),  # same cookie, other fields
               cookie("_ga", BEFORE, domain=".shop.example"), cookie("ads", AFTER, domain=".tracker.example"),
               cookie("late", AFTER), cookie("fresh", AFTER), cookie("pixel", domain=".tracker.example")]
    changes = compare_cookies(previous=previous, current=current)
    assert names(changes["new"]) == ["fresh", "pixel"]
    assert names(changes["gone"]) == ["old"]
    assert changes["moved_before_consent"] == [cookie("_ga", BEFORE, domain=".shop.example")]  # not "late": later


def test_a_cookie_is_the_same_cookie_by_name_domain_and_path():
    previous = [cookie("id", domain="a.example"), cookie("id", path="/shop")]
    current = [cookie("id", domain="A.example"), cookie("id", path="/")]
    changes = compare_cookies(previous=previous, current=current)
    assert [(c["domain"], c["path"]) for c in changes["new"]] == [("shop.example", "/")]
    assert [(c["domain"], c["path"]) for c in changes["gone"]] == [("shop.example", "/shop")]


COOKIES = st.lists(st.builds(lambda name, domain, path, phase: cookie(name, phase, domain=domain, path=path),
                             st.sampled_from("abc"), st.sampled_from(["x.example", ".x.example"]),
                             st.sampled_from(["/", "/a"]), st.sampled_from([BEFORE, AFTER])), max_size=12)


@given(previous=COOKIES, current=COOKIES)
def test_the_changes_account_for_every_cookie_of_both_scans(previous, current):
    changes = compare_cookies(previous=previous, current=current)

    def ids(cookies):
        return {cookie_identity(c) for c in cookies}

    new, gone, moved = (ids(changes[name]) for name in ("new", "gone", "moved_before_consent"))
    unchanged = ids(current) & ids(previous)
    assert new | unchanged == ids(current) and not new & unchanged
    assert gone | unchanged == ids(previous) and not gone & ids(current)
    assert moved == {key for key in unchanged
                     if any(cookie_identity(c) == key and c["phase"] == BEFORE for c in current)
                     and all(c["phase"] == AFTER for c in previous if cookie_identity(c) == key)}
    assert all(len(changes[name]) == len(ids(changes[name])) for name in changes), "one record per cookie"


# --- stored when the run finishes ------------------------------------------------------
def test_the_first_scan_is_the_baseline_and_the_next_is_compared_with_it(make_schedule):
    schedule = make_schedule()
    first = run(schedule, ago=timedelta(hours=3), found=scan(cookie("sid"), cookie("_ga", AFTER)))
    assert first.metadata["changes"] == BASELINE
    second = run(schedule, ago=timedelta(hours=2), found=scan(cookie("_ga"), cookie("pixel")))
    assert second.metadata["changes"] == {"since": str(first.pk), "new": [cookie("pixel")], "gone": [cookie("sid")],
                                          "moved_before_consent": [cookie("_ga")]}
    assert second.metadata["runner"] == "test" and second.metadata["scan"]["cookies"][1] == cookie("pixel")


def test_only_the_previous_successful_scan_of_the_same_schedule_counts(make_schedule):
    schedule, other = make_schedule(), make_schedule()
    now = timezone.now()
    compared = run(schedule, ago=timedelta(hours=6), found=scan(cookie("sid")))
    failed = run(schedule, ago=timedelta(hours=5), status="failed", found=scan(cookie("broken")))
    unscanned = run(schedule, ago=timedelta(hours=4))  # success without a scan
    make_execution(schedule=schedule, status="missed", now=now, ago=timedelta(hours=3, minutes=30))
    make_execution(schedule=other, status="success", now=now, ago=timedelta(hours=3),
                   metadata={"scan": scan(cookie("elsewhere"))})
    later = make_execution(schedule=schedule, status="success", now=now, ago=timedelta(minutes=10),
                           metadata={"scan": scan(cookie("future"))})  # started after this run: not before it
    current = run(schedule, ago=timedelta(hours=2), found=scan(cookie("sid"), cookie("new")))
    assert current.metadata["changes"]["since"] == str(compared.pk)
    assert names(current.metadata["changes"]["new"]) == ["new"] and current.metadata["changes"]["gone"] == []
    assert "changes" not in failed.metadata and "changes" not in unscanned.metadata
    assert "changes" not in JobExecution.objects.get(pk=later.pk).metadata


def test_only_a_run_with_a_scan_costs_the_extra_query(make_schedule):
    schedule = make_schedule()
    for found, statements in ((None, 1), (scan(cookie("sid")), 2)):
        row = make_execution(schedule=schedule, status="running", now=timezone.now(), instance_id="me")
        with CaptureQueriesContext(connection) as queries:
            finish_execution(execution_id=row.pk, status="success", started_at=row.started_at, instance_id="me",
                             metadata={} if found is None else {"scan": found})
        assert len(queries) == statements


# --- admin ------------------------------------------------------------------------
def test_execution_page_shows_the_scan_and_its_changes_as_escaped_tables(admin_client, make_schedule):
    schedule = make_schedule(domain="shop.example")
    first = run(schedule, ago=timedelta(hours=2), found=scan(cookie("sid"), cookie("gone<b>"), cookie("_ga", AFTER)))
    current = run(schedule, ago=timedelta(hours=1), found=scan(
        cookie("sid"), cookie("_ga"),
        cookie("<script>x</script>", domain=".tracker.example", third_party=True, expires="2027-01-01T00:00:00+00:00"),
        pages=[{"url": "https://shop.example/", "depth": 0, "status": 200},
               {"url": "https://shop.example/a?b=1&c=2", "depth": 1, "status": None, "error": "refused <policy>"}],
        storage=[{"origin": "https://shop.example", "key": "consent<state>", "phase": AFTER}],
        requests=[{"host": "tracker.example", "third_party": True, "phase": BEFORE}],
        consent={"selector": "#accept", "found": True, "clicked": True, "manager": "cookiebot"},
        refused=[{"host": "127.0.0.2", "reason": "127.0.0.2 is not a public address"}]))
    html = execution_page(admin_client, current)
    assert "<script>x</script>" not in html and "gone<b>" not in html
    assert ("<tr><td>&lt;script&gt;x&lt;/script&gt;</td><td>.tracker.example</td><td>/</td>"
            "<td>2027-01-01T00:00:00+00:00</td><td>no</td><td>no</td><td>Lax</td><td>yes</td><td>before consent</td></tr>"
            ) in html.split('<table class="scan-cookies">')[1]
    assert "<p>3 cookie(s): 3 before consent, 1 third-party</p>" in html
    assert ("<tr><td>https://shop.example/a?b=1&amp;c=2</td><td>1</td><td></td><td>refused &lt;policy&gt;</td></tr>"
            in html.split('<table class="scan-pages">')[1])
    assert "<tr><td>https://shop.example</td><td>consent&lt;state&gt;</td><td>after consent</td></tr>" in html
    assert "<tr><td>tracker.example</td><td>yes</td><td>before consent</td></tr>" in html
    assert "<tr><th>consent manager</th><td>cookiebot</td></tr>" in html
    assert "<tr><td>127.0.0.2</td><td>127.0.0.2 is not a public address</td></tr>" in html
    first_url = reverse("admin:history_jobexecution_change", args=[first.pk])
    assert f'<a class="previous-scan" href="{first_url}">the previous scan</a>' in html
    new = html.split('<table class="changes-new">')[1].split("</table>")[0]
    assert "&lt;script&gt;" in new and "<td>sid</td>" not in new
    assert "<td>gone&lt;b&gt;</td>" in html.split('<table class="changes-gone">')[1].split("</table>")[0]
    assert "<td>_ga</td>" in html.split('<table class="changes-moved_before_consent">')[1].split("</table>")[0]
    assert "&quot;cookies&quot;" not in html, "the scan is not repeated as raw JSON"

    # The baseline says so; a scan's empty sections, and a run without a scan, show none.
    html = execution_page(admin_client, first)
    assert "the baseline later scans are compared with" in html and "changes-new" not in html
    assert 'class="scan-cookies"' in html
    assert not any(f'class="{css}"' in html for css in ("scan-storage", "scan-requests", "scan-refused"))
    assert "localStorage" not in html and "refused hosts" not in html
    html = execution_page(admin_client, make_execution(schedule=schedule, status="failed", now=timezone.now()))
    assert "Changes since the previous scan" not in html and "scan-cookies" not in html and "scan-pages" not in html


def test_an_odd_scan_from_a_scan_api_still_shows_what_it_can(admin_client, make_schedule):
    execution = make_execution(schedule=make_schedule(), now=timezone.now(), metadata={
        "scan": {"cookies": "none", "pages": [1, "a", {"url": "<u>", "depth": 0}], "consent": [], "storage": None},
        "changes": {"since": "not-an-id", "new": 5, "gone": [None, {"name": "<g>"}]}})
    html = execution_page(admin_client, execution)
    assert "<tr><td>&lt;u&gt;</td><td>0</td><td></td></tr>" in html
    assert "<td>&lt;g&gt;</td>" in html.split('<table class="changes-gone">')[1] and "changes-new" not in html
    assert "scan-cookies" not in html and "scan-consent" not in html


def test_schedule_page_shows_what_the_latest_successful_scan_changed(admin_client, make_schedule):
    schedule = make_schedule()

    def page():
        response = admin_client.get(reverse("admin:schedules_schedule_change", args=[schedule.pk]))
        assert response.status_code == 200
        return response.content.decode()

    assert "Changes since the previous scan" in page() and "No successful scan yet." in page()
    first = run(schedule, ago=timedelta(hours=3), found=scan(cookie("sid")))
    assert "the baseline later scans are compared with" in page()
    second = run(schedule, ago=timedelta(hours=2), found=scan(cookie("sid"), cookie("pi<x>el")))
    run(schedule, ago=timedelta(hours=1), status="failed", found=scan())
    html = page()
    second_url = reverse("admin:history_jobexecution_change", args=[second.pk])
    assert f'<a class="latest-scan" href="{second_url}">the scan of ' in html
    first_url = reverse("admin:history_jobexecution_change", args=[first.pk])
    assert f'<a class="previous-scan" href="{first_url}">the previous scan</a>' in html
    assert "<td>pi&lt;x&gt;el</td>" in html.split('<table class="changes-new">')[1] and "pi<x>el" not in html
    run(schedule, ago=timedelta(minutes=30), found=scan(cookie("sid"), cookie("pi<x>el")))
    assert "No cookie is new, gone or moved before consent since" in page()


# --- the alert ----------------------------------------------------------------------
def test_a_new_cookie_before_consent_alerts_once_per_transition_and_resolves(make_schedule, hook):  # noqa: F811
    schedule = make_schedule(domain="shop.example")

    def check():
        return checks.check_new_cookies_before_consent(finished_within=timedelta(minutes=5))

    usual = (cookie("sid"), cookie("_ga", AFTER))
    run(schedule, ago=timedelta(hours=6), found=scan(*usual))
    assert check() == 0, "the first scan is the baseline"
    run(schedule, ago=timedelta(hours=5), found=scan(*usual, cookie("late", AFTER)))
    assert check() == 0, "new, but only after consent"
    flagged = run(schedule, ago=timedelta(hours=4), found=scan(
        cookie("sid"), cookie("_ga"), cookie("late", AFTER), cookie("pixel", domain=".tracker.example")))
    assert check() == 1
    assert check() == 0, "claimed once"
    alert = Alert.objects.get()
    assert (alert.kind, alert.event, alert.subject) == ("new_cookie_before_consent", "firing", str(schedule.pk))
    assert alert.title == "A new cookie is set before consent on shop.example: pixel, _ga"
    assert "pixel (.tracker.example, new)" in alert.text and "_ga (shop.example, set after consent last time)" in alert.text
    assert alert.details["execution_id"] == str(flagged.pk)
    run(schedule, ago=timedelta(hours=3), status="failed", found=scan())
    assert check() == 0, "a failed scan neither resolves nor fires"
    same = (cookie("sid"), cookie("_ga"), cookie("pixel", domain=".tracker.example"))
    run(schedule, ago=timedelta(hours=2), found=scan(*same))
    assert check() == 1 and check() == 0
    run(schedule, ago=timedelta(hours=1), found=scan(*same, cookie("again")))
    assert check() == 1
    assert list(Alert.objects.order_by("id").values_list("event", flat=True)) == ["firing", "resolved", "firing"]
    assert dispatch_all() == 3
    bodies = [body for _, _, body in hook.messages]
    assert [body["alert"]["event"] for body in bodies] == ["firing", "resolved", "firing"]
    assert "shop.example" in bodies[0]["text"] and "pixel" in bodies[0]["text"] and "again" in bodies[2]["text"]


def test_the_alert_loop_and_checkalerts_evaluate_new_cookies(make_schedule, hook):  # noqa: F811
    schedule = make_schedule(domain="shop.example")
    run(schedule, ago=timedelta(hours=2), found=scan(cookie("sid")))
    run(schedule, ago=timedelta(hours=1), found=scan(cookie("sid"), cookie("pixel")))
    evaluate(lookback=timedelta(minutes=5), instance_id="test")
    assert Alert.objects.get(kind="new_cookie_before_consent").instance_id == "test"
