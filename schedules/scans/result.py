"""Result: the shape every runner records in JobExecution.metadata["scan"].

This is the contract other tools read (README, "What a scan records"):
  pages:    [{url, depth, status}]
  cookies:  [{name, domain, path, expires, secure, http_only, same_site, third_party, phase}]
  storage:  [{origin, key, phase}]                     (localStorage)
  requests: [{host, third_party, phase}]               (deduplicated per phase)
  consent:  {selector, found, clicked}
``phase`` is when a thing was first seen: before or after the consent click.
``expires`` is an ISO-8601 UTC time, or None for a session cookie.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from schedules.scans.parties import host_of, is_third_party, site_of

BEFORE_CONSENT = "before_consent"
AFTER_CONSENT = "after_consent"
PHASES = (BEFORE_CONSENT, AFTER_CONSENT)

COOKIE_FIELDS = ("name", "domain", "path", "expires", "secure", "http_only", "same_site", "third_party", "phase")


def cookie_key(cookie: dict) -> tuple[str, str, str]:
    """What makes two cookies the same cookie: name, domain and path."""
    return (cookie.get("name", ""), (cookie.get("domain") or "").lower(), cookie.get("path") or "/")


def expires_iso(value: Any) -> str | None:
    """Epoch seconds (a browser's -1 is a session cookie) as ISO-8601 UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def cookie_record(*, name: str, domain: str, path: str, expires: Any, secure: bool, http_only: bool,
                  same_site: str, site: str, phase: str) -> dict:
    domain = (domain or "").lower()
    return {
        "name": name, "domain": domain, "path": path or "/", "expires": expires_iso(expires),
        "secure": bool(secure), "http_only": bool(http_only), "same_site": same_site or "",
        "third_party": is_third_party(domain.lstrip("."), first_party_site=site), "phase": phase,
    }


def request_records(seen: Iterable[tuple[str, str]], *, site: str) -> list[dict]:
    """(host, phase) pairs as records, one per host and phase."""
    unique = sorted(set(seen), key=lambda pair: (PHASES.index(pair[1]), pair[0]))
    return [{"host": host, "third_party": is_third_party(host, first_party_site=site), "phase": phase}
            for host, phase in unique]


def scan_record(*, domain: str, pages: list[dict], cookies: list[dict], storage: list[dict],
                requests: list[dict], consent: dict, **extra) -> dict:
    """The whole scan object, in a stable order (cookies by phase, then name)."""
    return {
        "site": site_of(host_of(domain)),
        "pages": pages,
        "cookies": sorted(cookies, key=lambda c: (PHASES.index(c["phase"]), c["name"], c["domain"], c["path"])),
        "storage": sorted(storage, key=lambda s: (PHASES.index(s["phase"]), s["origin"], s["key"])),
        "requests": requests,
        "consent": consent,
        **extra,
    }


def no_consent(selector: str = "") -> dict:
    return {"selector": selector, "found": False, "clicked": False}


def from_answer(scan: Any, *, domain: str) -> dict | None:
    """A scan API's ``scan`` object in the contract's shape, or None when it has
    none. Missing lists become empty; entries that are not objects are dropped;
    third_party is decided here when the answer leaves it out."""
    if not isinstance(scan, dict):
        return None
    site = site_of(host_of(domain))

    def entries(key: str) -> list[dict]:
        value = scan.get(key)
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

    def phase(item: dict) -> str:
        return item.get("phase") if item.get("phase") in PHASES else BEFORE_CONSENT

    cookies = []
    for item in entries("cookies"):
        if not isinstance(item.get("name"), str):
            continue
        record = cookie_record(
            name=item["name"], domain=str(item.get("domain") or host_of(domain)), path=str(item.get("path") or "/"),
            expires=item.get("expires"), secure=bool(item.get("secure")), http_only=bool(item.get("http_only")),
            same_site=str(item.get("same_site") or ""), site=site, phase=phase(item))
        if isinstance(item.get("third_party"), bool):
            record["third_party"] = item["third_party"]
        cookies.append(record)
    requests = [{"host": str(item["host"]), "phase": phase(item),
                 "third_party": item["third_party"] if isinstance(item.get("third_party"), bool)
                 else is_third_party(str(item["host"]), first_party_site=site)}
                for item in entries("requests") if isinstance(item.get("host"), str)]
    consent = scan.get("consent") if isinstance(scan.get("consent"), dict) else no_consent()
    return scan_record(
        domain=domain,
        pages=[{"url": str(p.get("url", "")), "depth": p.get("depth"), "status": p.get("status")}
               for p in entries("pages")],
        cookies=cookies,
        storage=[{"origin": str(s.get("origin", "")), "key": str(s.get("key", "")), "phase": phase(s)}
                 for s in entries("storage")],
        requests=requests,
        consent={"selector": str(consent.get("selector") or ""), "found": bool(consent.get("found")),
                 "clicked": bool(consent.get("clicked"))},
    )
