"""Which network addresses the probe may connect to, and the URLs it may follow.

A scanned site chooses the names the probe resolves and the redirects it
follows, so every address a name resolves to is checked, and the connection
goes to exactly the address that was checked (see scanner_project.outbound.http). Anything
not globally routable is refused, as are addresses that embed one.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from urllib3.util import parse_url

from scanner_project.redaction import shown as _shown

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(items: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """A setting's network list (PROBE_ALLOWED_NETWORKS, ALERT_ALLOWED_NETWORKS; checked by env_networks) parsed."""
    return tuple(ipaddress.ip_network(item) for item in items)

# Globally routable by the registry, yet reaching the cloud host itself, or
# not global but missing from the standard library's table in some versions.
_ALSO_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "100.64.0.0/10",  # carrier-grade NAT; Alibaba Cloud's metadata service is 100.100.100.200
        "168.63.129.16/32",  # Azure's host agent and DNS
        "192.0.0.0/24",
        "198.18.0.0/15",
        "64:ff9b:1::/48",  # local-use NAT64
        "fec0::/10",  # deprecated site-local (RFC 3879): still routed inside some sites, yet is_global
        "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765, SIIT): ::ffff:0:127.0.0.1 is 127.0.0.1 to a translator
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The destination is not a public address (or the URL is ambiguous)."""


def resolve(host: str, port: int) -> list[tuple[int, tuple]]:
    """The (family, sockaddr) pairs a name resolves to; the one resolution per connection."""
    return [(info[0], info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def refusal(address: Address) -> str | None:
    """Why the probe must not connect to ``address``, or None when it may."""
    if address.is_multicast:
        return "a multicast address"
    for network in _ALSO_REFUSED:
        if address.version == network.version and address in network:
            return f"in {network}, which is not a public destination"
    if not address.is_global:
        return "not a globally routable address"
    for embedded in _embedded_ipv4(address):
        reason = refusal(embedded)
        if reason:
            return f"embeds {embedded}, {reason}"
    return None


def _embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    if address.version != 6:
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        found.extend(address.teredo)
    if address in _NAT64 or int(address) < 2**32:  # NAT64, and the deprecated IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def checked_addresses(
    host: str, port: int, *, allow_private: bool, allowed_networks: tuple = ()
) -> list[tuple[int, tuple]]:
    """Resolves ``host`` once and returns its addresses, refusing the name if any is not public.

    One refused address refuses the whole name: the order of the answers is
    the resolver's (the attacker's) choice.
    """
    try:
        answers = resolve(host, port)
    except socket.gaierror as exc:
        raise AddressRefused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    if not answers:
        raise AddressRefused(f"{host!r} resolves to no address")
    if allow_private:
        return answers
    for _family, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if any(address.version == net.version and address in net for net in allowed_networks):
            continue
        reason = refusal(address)
        if reason:
            raise AddressRefused(
                f"{host} resolves to {address}, {reason} (set PROBE_ALLOW_PRIVATE=true to allow it)"
            )
    return answers


def refuse_ambiguous_url(url: str) -> None:
    """Refuses URLs whose host two parsers could read differently.

    ``http://127.0.0.1:80\\@example.com/``: urlsplit reads the host as
    example.com, urllib3 as 127.0.0.1. User info serves no purpose in a probe
    and is the usual vehicle of such tricks, so it is refused too.
    """
    if "\\" in url or any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise AddressRefused(f"refusing the URL {_shown(url)}: it contains a backslash, space or control character")
    try:
        parts = urlsplit(url)
        ours = (parts.hostname or "").strip("[]").lower()
        theirs = (parse_url(url).host or "").strip("[]").lower()
    except ValueError as exc:
        raise AddressRefused(f"refusing the URL {_shown(url)}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise AddressRefused(f"refusing the URL {_shown(url)}: only http and https are followed")
    if "@" in parts.netloc:
        raise AddressRefused(f"refusing the URL {_shown(url)}: it carries user info")
    if not ours or ours != theirs:
        raise AddressRefused(f"refusing the URL {_shown(url)}: its host is ambiguous ({ours!r} or {theirs!r})")
