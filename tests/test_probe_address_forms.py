"""Two IPv6 forms the address policy let through: the deprecated site-local
block fec0::/10 (RFC 3879; ipaddress calls it global) and the IPv4-translated
form ::ffff:0:a.b.c.d (RFC 2765, ::ffff:0:0:0/96), which a SIIT translator
delivers to a.b.c.d. Both are refused: as addresses, as a redirect hop and as
the answer of a name (the stub resolver of tests/test_probe_ssrf.py)."""

import ipaddress

import pytest

from scanner_project.outbound import addresses
from schedules.scans.probe import probe_runner
from schedules.scans.request import ScanRefused
from tests.test_probe_ssrf import PUBLIC, names, private_server, probe, public_server, redirect_to  # noqa: F401
from tests.test_runners import request_for

REFUSED = ["fec0::1", "fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fed0::a:1",
           "::ffff:0:127.0.0.1", "::ffff:0:10.0.0.1", "::ffff:0:169.254.169.254", "::ffff:0:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_site_local_and_ipv4_translated_addresses_are_refused(address):
    reason = addresses.refusal(ipaddress.ip_address(address))
    assert reason is not None and ("fec0::/10" in reason or "::ffff:0:0:0/96" in reason), reason


@pytest.mark.parametrize("address", ["2606:2800:220:1:248:1893:25c8:1946", "2a00:1450:4001::1", "2001:4860:4860::8888"])
def test_public_ipv6_addresses_stay_allowed(address):
    assert addresses.refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["fec0::1", "::ffff:0:127.0.0.1"])
def test_a_redirect_to_it_fails_the_scan_before_connecting(public_server, private_server, probe, address):  # noqa: F811
    public_server.serve("/", redirect_to(f"http://[{address}]:{private_server.port}/"))
    with pytest.raises(ScanRefused) as refused:
        probe_runner(request_for(f"{PUBLIC}:{public_server.port}"))
    assert address in str(refused.value)
    assert private_server.connections == 0


@pytest.mark.parametrize("address", ["fec0::1", "::ffff:0:127.0.0.1"])
def test_a_name_that_resolves_to_it_is_refused(names, address):  # noqa: F811
    names["inside.test"] = [[address]]
    with pytest.raises(addresses.AddressRefused) as refused:
        addresses.checked_addresses("inside.test", 443, allow_private=False)
    assert f"inside.test resolves to {ipaddress.ip_address(address)}" in str(refused.value)
