"""The probe against local servers: a "public" one on 127.0.0.2 and a private one on 127.0.0.1.

127.0.0.2 is public only through PROBE_ALLOWED_NETWORKS, and the names
public.test and rebind.test exist only through a patched resolver
(scanner_project.outbound.addresses.resolve, the one resolution each connection makes). The
private server counts every TCP connection it accepts: none may arrive.
"""

import ipaddress
import socket
import threading
import time

import pytest
import requests

from scanner_project.outbound import addresses
from scanner_project.outbound.http import DeadlineExceeded
from schedules.scans.probe import probe_runner
from schedules.scans.request import ScanRefused
from schedules.scans.retries import run_with_retries
from tests.api_server import ApiServer, tls_context, trickle_headers
from tests.test_runners import request_for, with_cookies

PUBLIC = "127.0.0.2"


@pytest.fixture
def public_server():
    with ApiServer(PUBLIC) as server:
        yield server


@pytest.fixture
def private_server(public_server):
    # The same port as the public one: an address swapped after the check
    # would land here rather than on a closed port.
    with ApiServer("127.0.0.1", public_server.port) as server:
        server.serve("/", with_cookies("internal=secret; Path=/"))
        yield server


@pytest.fixture
def names(monkeypatch):
    """name -> list of answers, one per resolution; the last one repeats."""
    table: dict[str, list[list[str]]] = {}
    real = addresses.resolve

    def resolve(host, port):
        if host not in table:
            return real(host, port)
        answers = table[host]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, (a, port)) for a in answer]

    monkeypatch.setattr(addresses, "resolve", resolve)
    return table


@pytest.fixture
def probe(settings):
    settings.PROBE_SCHEME = "http"
    settings.PROBE_ALLOW_PRIVATE = False
    settings.PROBE_ALLOWED_NETWORKS = [f"{PUBLIC}/32"]
    settings.REQUEST_TIMEOUT = 1
    settings.SCAN_DEADLINE = 2
    return settings


def redirect_to(location: str):
    return with_cookies("hop=1; Path=/", status=302, location=location)


def private_forms(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://2130706433:{port}/",  # 127.0.0.1 as one decimal number
        f"http://0x7f.1:{port}/",
        f"http://0.0.0.0:{port}/",  # Linux connects this to the local host
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",  # IPv4-compatible
        f"http://[2002:7f00:1::]:{port}/",  # 6to4 of 127.0.0.1
        f"http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of 127.0.0.1
        f"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:{port}/",  # Teredo
        f"http://10.0.0.1:{port}/",
        f"http://172.16.0.1:{port}/",
        f"http://192.168.0.1:{port}/",
        f"http://169.254.169.254:{port}/",  # cloud metadata
        f"http://100.100.100.200:{port}/",  # Alibaba Cloud metadata (100.64.0.0/10)
        f"http://168.63.129.16:{port}/",  # Azure host agent
        f"http://[fd00::1]:{port}/",
        f"http://[fe80::1]:{port}/",
        f"http://224.0.0.1:{port}/",
        f"http://127.0.0.1:{port}\\@{PUBLIC}/",  # urllib3 and urlsplit disagree on the host
        f"http://{PUBLIC}@127.0.0.1:{port}/",  # user info
    ]


def test_every_private_form_is_refused_and_never_reached(public_server, private_server, probe):
    forms = private_forms(private_server.port)
    for number, location in enumerate(forms):
        public_server.serve(f"/go{number}", redirect_to(location))
    for number, location in enumerate(forms):
        started = time.monotonic()
        with pytest.raises(ScanRefused):
            probe_runner(request_for(f"{PUBLIC}:{public_server.port}", customPages=[f"/go{number}"]))
        assert time.monotonic() - started < probe.SCAN_DEADLINE + 1, location
    assert private_server.connections == 0
    assert sum(public_server.hits.values()) >= len(forms)


def test_a_public_page_is_fetched_through_its_resolved_address(public_server, private_server, probe, names):
    public_server.serve("/", with_cookies("visible=1; Path=/"))
    names["public.test"] = [[PUBLIC]]
    result = probe_runner(request_for(f"public.test:{public_server.port}"))
    assert [c["name"] for c in result.metadata["scan"]["cookies"]] == ["visible"]
    assert private_server.connections == 0


def test_a_name_that_answers_public_then_private_is_connected_where_it_was_checked(
    public_server, private_server, probe, names
):
    # Both servers listen on the same port, so a second resolution (the old
    # check-then-connect) would reach the private one.
    public_server.serve("/", with_cookies("visible=1; Path=/"))
    names["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    result = probe_runner(request_for(f"rebind.test:{public_server.port}"))
    assert [c["name"] for c in result.metadata["scan"]["cookies"]] == ["visible"]
    assert public_server.hits["/"] == 1 and private_server.connections == 0


def test_a_later_connection_to_a_rebound_name_is_refused(public_server, private_server, probe, names):
    # The public server closes each connection (HTTP/1.0), so the second page
    # needs a new connection, and so a new resolution, which now says 127.0.0.1.
    public_server.serve("/", with_cookies("visible=1; Path=/"))
    public_server.serve("/second", with_cookies("visible=2; Path=/"))
    names["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    with pytest.raises(ScanRefused, match="127.0.0.1"):
        probe_runner(request_for(f"rebind.test:{private_server.port}", customPages=["/second"]))
    assert private_server.connections == 0


def test_a_name_with_one_private_answer_among_public_ones_is_refused(public_server, private_server, probe, names):
    names["mixed.test"] = [[PUBLIC, "127.0.0.1"]]
    with pytest.raises(ScanRefused, match="127.0.0.1"):
        probe_runner(request_for(f"mixed.test:{private_server.port}"))
    assert private_server.connections == 0 and public_server.connections == 0


def test_a_server_that_trickles_its_headers_ends_the_scan_within_the_deadline(public_server, probe):
    public_server.serve("/", trickle_headers)
    started = time.monotonic()
    outcome = run_with_retries(runner=probe_runner, request=request_for(f"{PUBLIC}:{public_server.port}"),
                               max_retries=2, backoff=0, stop=threading.Event())
    elapsed = time.monotonic() - started
    assert isinstance(outcome.error, DeadlineExceeded), outcome.error_details
    assert "deadline of 2 s" in str(outcome.error)
    assert elapsed < probe.SCAN_DEADLINE + 1


@pytest.mark.parametrize(
    "address",
    ["100.100.100.200", "100.64.0.1", "168.63.129.16", "2002:7f00:1::", "2002:a00:1::", "::ffff:10.0.0.1",
     "::127.0.0.1", "64:ff9b::a00:1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "ff02::1", "224.0.0.1", "0.0.0.0"],
)
def test_addresses_that_are_not_public_are_refused(address):
    assert addresses.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "2002:5db8:d822::"])
def test_public_addresses_are_allowed(address):
    assert addresses.refusal(ipaddress.ip_address(address)) is None


@pytest.fixture
def tls_public_server(tmp_path):
    """HTTPS on 127.0.0.2 with a certificate for public.test only."""
    context, cert = tls_context(tmp_path, "public.test")
    with ApiServer(PUBLIC, tls=context) as server:
        server.ca = cert
        yield server


def test_https_to_the_pinned_address_keeps_the_name_for_sni_host_and_certificate(tls_public_server, probe, names):
    from scanner_project.outbound.http import build_session

    tls_public_server.serve("/", with_cookies("tls=1; Path=/"))
    names["public.test"] = [[PUBLIC]]
    names["other.test"] = [[PUBLIC]]
    session = build_session(token="", retries=0, backoff=0, deadline=5, public_only=True,
                            allowed_networks=(ipaddress.ip_network(f"{PUBLIC}/32"),))
    with session:
        response = session.get(f"https://public.test:{tls_public_server.port}/", verify=tls_public_server.ca, timeout=2)
        assert response.status_code == 200 and response.cookies["tls"] == "1"
        assert tls_public_server.server_names == ["public.test"]
        assert tls_public_server.hosts == [f"public.test:{tls_public_server.port}"]
        # Same address, another name: the certificate is checked against the name, not the address.
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://other.test:{tls_public_server.port}/", verify=tls_public_server.ca, timeout=2)
