"""The scan-API runner's keep-alive pool, against real servers on 127.0.0.1.

One pool per process is shared by every worker thread; each POST keeps its
own SCAN_DEADLINE on whichever pooled connection it holds, and a redirect is
refused, never followed."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from scanner_project.outbound.http import Deadline, DeadlineExceeded
from scanner_project.outbound.pool import PooledSession
from schedules.scans import http_api
from schedules.scans.http_api import ScanApiRedirected, http_runner
from tests.api_server import ApiServer, send, sequence, tls_context
from tests.test_runners import request_for
from tests.waiting import wait_until

DEADLINE = 1.0


@pytest.fixture(autouse=True)
def scan_api_settings(settings):
    settings.REQUEST_TIMEOUT = 1
    settings.SCAN_DEADLINE = DEADLINE
    settings.SCAN_API_TOKEN = "scan-token-never-logged"
    settings.MAX_WORKERS = 5
    http_api.close_pool()  # each test starts with an empty pool of MAX_WORKERS
    yield settings
    http_api.close_pool()


@pytest.fixture
def keep_alive():
    with ApiServer(protocol="HTTP/1.1") as server:
        yield server


def scan_id(handler, server, *, pause: float = 0.0) -> None:
    body = json.loads(handler.request_body or b"{}")
    if pause:
        time.sleep(pause)  # the time a scan API takes to answer, so that calls overlap
    try:
        send(handler, 201, json.dumps({"scan_id": f"scan-{body.get('domain')}"}).encode())
    except OSError:
        pass  # the client gave up waiting


def trickle(handler, server) -> None:
    """Headers, then a body a byte every 20 ms: no read timeout ever fires. Gives up after 6 s."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "1000000")
    handler.end_headers()
    until = time.monotonic() + 6
    try:
        while time.monotonic() < until and not server.stop.is_set():
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.02)  # the pace of a slow server
    except OSError:
        pass  # the client gave up, as it should
    handler.close_connection = True


def by_domain(**behaviours):
    def behave(handler, server):
        domain = json.loads(handler.request_body or b"{}").get("domain")
        behaviours.get(domain.replace(".", "_"), scan_id)(handler, server)

    return behave


def test_consecutive_scans_reuse_one_connection(keep_alive, settings):
    settings.SCAN_API_URL = keep_alive.serve("/scans", scan_id)
    results = [http_runner(request_for(f"site{n}.example")) for n in range(6)]
    assert [r.scan_id for r in results] == [f"scan-site{n}.example" for n in range(6)]
    assert keep_alive.hits["/scans"] == 6
    assert keep_alive.connections == 1
    assert set(keep_alive.authorization) == {"Bearer scan-token-never-logged"}
    assert len(set(keep_alive.keys)) == 6  # each POST keeps its own Idempotency-Key


def test_concurrent_scans_from_five_threads_use_at_most_five_connections(keep_alive, settings):
    settings.SCAN_API_URL = keep_alive.serve("/scans", lambda h, s: scan_id(h, s, pause=0.02))
    start = threading.Barrier(5)
    found: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        start.wait()
        for k in range(8):
            try:
                found.append(http_runner(request_for(f"w{n}-{k}.example")).scan_id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(found) == sorted(f"scan-w{n}-{k}.example" for n in range(5) for k in range(8))
    assert keep_alive.hits["/scans"] == 40
    assert 1 <= keep_alive.connections <= 5


@pytest.mark.parametrize("protocol, connections", [("HTTP/1.1", 2), ("HTTP/1.0", 3)])
def test_a_trickling_answer_on_a_pooled_connection_is_cut_off_and_the_next_scan_gets_a_fresh_one(
    settings, protocol, connections
):
    with ApiServer(protocol=protocol) as server:
        settings.SCAN_API_URL = server.serve("/scans", sequence(scan_id, trickle, scan_id))
        assert http_runner(request_for("first.example")).scan_id == "scan-first.example"
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            http_runner(request_for("slow.example"))  # HTTP/1.1: on the connection the first scan used
        assert DEADLINE - 0.1 <= time.monotonic() - started < DEADLINE + 1.5
        assert http_runner(request_for("next.example")).scan_id == "scan-next.example"
        assert server.hits["/scans"] == 3
        assert server.connections == connections  # the cut-off connection was not used again


def test_a_deadline_cuts_off_only_the_connection_of_its_own_call(keep_alive, settings):
    settings.SCAN_API_URL = keep_alive.serve("/scans", by_domain(slow_example=trickle))
    http_runner(request_for("warm.example"))  # the slow call below takes this pooled connection
    outcome: list[BaseException] = []
    took: list[float] = []

    def slow() -> None:
        started = time.monotonic()
        try:
            http_runner(request_for("slow.example"))
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)
        took.append(time.monotonic() - started)

    slow_call = threading.Thread(target=slow)
    slow_call.start()
    wait_until(lambda: keep_alive.hits["/scans"] == 2, timeout=5, message="the slow POST did not arrive")
    fast = []
    until = time.monotonic() + DEADLINE + 0.5
    while time.monotonic() < until:  # other calls go on, on the other pooled connections, past its deadline
        fast.append(http_runner(request_for(f"fast{len(fast)}.example")).scan_id)
    slow_call.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], DeadlineExceeded)
    assert took[0] < DEADLINE + 1.5
    assert len(fast) > 10 and fast[-1] == f"scan-fast{len(fast) - 1}.example"
    assert keep_alive.connections == 2  # the slow call's, and the one every fast call reused


def the_pool(session: PooledSession, url: str):
    """The connection pool the session's requests to ``url`` go through (after one of them)."""
    with session.call(5):
        assert session.post(url, json={"domain": "warm"}).status_code == 201
    manager = session.get_adapter(url).poolmanager
    (key,) = manager.pools.keys()
    return manager.pools[key]


def test_a_connection_the_deadline_shut_down_is_never_put_back(keep_alive):
    url = keep_alive.serve("/x", scan_id)
    session = PooledSession(maxsize=1)
    pool = the_pool(session, url)
    with session.call(1.0) as deadline:
        conn = pool._get_conn()
        assert conn.sock is not None  # the warm connection
        conn.request("POST", "/x", body=b"{}")
        conn.getresponse().read()  # answered in full: the connection could be reused
        assert deadline.expired.wait(3)  # the deadline passes while the call still holds it
        pool._put_conn(conn)
    assert conn.sock is None  # closed
    assert all(queued is None or queued.sock is None for queued in pool.pool.queue)
    with session.call(5):
        assert session.post(url, json={"domain": "again"}).status_code == 201
    assert keep_alive.connections == 2  # the warm one, shut down, then a new one
    session.close()


def test_the_deadline_of_a_call_that_let_go_of_a_connection_no_longer_watches_it(keep_alive):
    url = keep_alive.serve("/x", scan_id)
    session = PooledSession(maxsize=1)
    pool = the_pool(session, url)
    earlier = Deadline(1.0)
    with session.call(5):
        conn = pool._get_conn()
        assert conn.sock is not None and conn.let_go()
        conn.hold(earlier)  # a call whose deadline outlives its use of the connection
        conn.request("POST", "/x", body=b"{}")
        conn.getresponse().read()
        assert conn.let_go()  # back before its deadline: kept
        pool._put_conn(conn)
        assert earlier.expired.wait(3)
        # the next call takes the same connection; the earlier deadline passed and left it alone
        assert session.post(url, json={"domain": "later"}).json() == {"scan_id": "scan-later"}
    earlier.close()
    assert keep_alive.connections == 1
    session.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_with_its_location_and_never_followed(keep_alive, settings, status):
    with ApiServer(protocol="HTTP/1.1") as elsewhere:
        target = elsewhere.serve("/scans", scan_id) + "?token=secret"

        def redirect(handler, server):
            handler.send_response(status)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        settings.SCAN_API_URL = keep_alive.serve("/scans", sequence(redirect, scan_id))
        with pytest.raises(ScanApiRedirected) as raised:
            http_runner(request_for("example.com"))
        message = str(raised.value)
        assert message.startswith(str(status)) and "redirects are not followed" in message
        assert f"127.0.0.1:{elsewhere.port}/scans?token=***" in message and "secret" not in message
        assert isinstance(raised.value, requests.HTTPError)  # retried under maxRetries like an error answer
        assert elsewhere.hits["/scans"] == 0 and elsewhere.connections == 0
        # the redirect's body was read: its connection serves the next scan
        assert http_runner(request_for("next.example")).scan_id == "scan-next.example"
        assert keep_alive.connections == 1


def drop_without_answer(handler, server) -> None:
    """The request is read, then the connection closes: what a server closing an idle keep-alive does."""
    handler.close_connection = True


def test_a_kept_alive_connection_closed_before_the_answer_is_posted_again_on_a_new_one(keep_alive, settings):
    settings.SCAN_API_URL = keep_alive.serve("/scans", sequence(scan_id, drop_without_answer, scan_id))
    http_runner(request_for("first.example"))
    request = request_for("second.example")
    assert http_runner(request).scan_id == "scan-second.example"
    assert keep_alive.keys[1:] == [request.idempotency_key, request.idempotency_key]  # the same key, twice
    assert keep_alive.connections == 2


def test_a_new_connection_closed_before_the_answer_is_not_posted_again(keep_alive, settings):
    settings.SCAN_API_URL = keep_alive.serve("/scans", sequence(drop_without_answer, scan_id))
    with pytest.raises(requests.ConnectionError):
        http_runner(request_for("first.example"))
    assert keep_alive.hits["/scans"] == 1


def test_a_read_timeout_on_a_kept_alive_connection_is_not_posted_again(keep_alive, settings):
    settings.SCAN_DEADLINE = 5
    settings.SCAN_API_URL = keep_alive.serve("/scans", sequence(scan_id, lambda h, s: scan_id(h, s, pause=1.5)))
    http_runner(request_for("first.example"))
    with pytest.raises(requests.exceptions.ReadTimeout):
        http_runner(request_for("slow.example"))
    assert keep_alive.hits["/scans"] == 2


def test_through_an_http_proxy_pooled_posts_keep_their_deadline(keep_alive, settings, monkeypatch):
    # The scan API's calls honour HTTP_PROXY, as before; the pooled connection
    # to the proxy is reused and bounded by each call's deadline like any other.
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", keep_alive.url(""))
    keep_alive.serve("http://scan.invalid/scans", sequence(scan_id, trickle, scan_id))  # a proxy sees the absolute URL
    settings.SCAN_API_URL = "http://scan.invalid/scans"
    assert http_runner(request_for("first.example")).scan_id == "scan-first.example"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        http_runner(request_for("slow.example"))
    assert time.monotonic() - started < DEADLINE + 1.5
    assert http_runner(request_for("next.example")).scan_id == "scan-next.example"
    assert keep_alive.hits["http://scan.invalid/scans"] == 3
    assert keep_alive.connections == 2


@pytest.fixture
def tls_keep_alive(tmp_path, monkeypatch):
    """HTTPS with keep-alive on 127.0.0.1, a certificate for localhost, trusted by the client."""
    context, cert = tls_context(tmp_path, "localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    with ApiServer(tls=context, protocol="HTTP/1.1") as server:
        yield server


def test_over_tls_consecutive_scans_make_one_handshake_and_a_trickle_is_still_cut_off(tls_keep_alive, settings):
    settings.SCAN_API_URL = f"https://localhost:{tls_keep_alive.port}/scans"
    tls_keep_alive.serve("/scans", sequence(scan_id, scan_id, scan_id, trickle, scan_id))
    assert [http_runner(request_for(f"s{n}.example")).scan_id for n in range(3)] == [
        "scan-s0.example", "scan-s1.example", "scan-s2.example"]
    assert tls_keep_alive.server_names == ["localhost"]  # one TLS handshake for three POSTs
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        http_runner(request_for("slow.example"))  # on the kept-alive TLS connection
    assert time.monotonic() - started < DEADLINE + 1.5
    assert http_runner(request_for("next.example")).scan_id == "scan-next.example"
    assert tls_keep_alive.connections == 2 and tls_keep_alive.server_names == ["localhost", "localhost"]

