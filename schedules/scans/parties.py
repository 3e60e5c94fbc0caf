"""Parties: first or third party, decided by registrable domain (eTLD+1).
The Public Suffix List comes from the publicsuffixlist package; nothing is fetched at run time.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

# The package's bundled list, private section included: a.github.io and
# b.github.io are different sites, as browsers treat them.
_LIST = PublicSuffixList()


def host_of(domain_or_url: str) -> str:
    """The lower-case host of a URL, or of a scan's domain ("example.com:8443")."""
    text = domain_or_url if "//" in domain_or_url else f"//{domain_or_url}"
    return (urlsplit(text).hostname or "").lower().rstrip(".")


@lru_cache(maxsize=4096)
def site_of(host: str) -> str:
    """The registrable domain of ``host``; an IP address or a name without a
    public suffix (localhost) is its own site."""
    host = host.lower().strip("[]").lstrip(".").rstrip(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    return _LIST.privatesuffix(host) or host


def is_third_party(host: str, *, first_party_site: str) -> bool:
    return site_of(host) != first_party_site
