"""A scan (``metadata["scan"]``) and its changes (``metadata["changes"]``) as
HTML tables for admin. Every value is escaped (format_html / format_html_join):
scan results are written by pages and scan APIs nobody here controls.

Each function returns "" for a section with nothing in it, so that the page can
leave the section out.
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

PHASE_WORDS = {"before_consent": "before consent", "after_consent": "after consent"}

PAGE_COLUMNS = (("url", "url"), ("depth", "depth"), ("status", "status"), ("final_url", "final url"),
                ("error", "error"))
COOKIE_COLUMNS = (("name", "name"), ("domain", "domain"), ("path", "path"), ("expires", "expires"),
                  ("secure", "secure"), ("http_only", "http only"), ("same_site", "same site"),
                  ("third_party", "third party"), ("phase", "first seen"))
STORAGE_COLUMNS = (("origin", "origin"), ("key", "key"), ("phase", "first seen"))
REQUEST_COLUMNS = (("host", "host"), ("third_party", "third party"), ("phase", "first seen"))
REFUSED_COLUMNS = (("host", "host"), ("reason", "reason"))
CONSENT_ROWS = (("selector", "selector"), ("found", "found"), ("clicked", "clicked"), ("manager", "consent manager"),
                ("error", "error"))
CHANGE_SECTIONS = (("new", "New cookies"), ("gone", "Gone cookies"),
                   ("moved_before_consent", "Moved from after consent to before consent"))


def cell(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "session" if key == "expires" else ""
    if key == "phase":
        return PHASE_WORDS.get(value, str(value))
    return str(value)


def entries(scan: Any, key: str) -> list[dict]:
    value = scan.get(key) if isinstance(scan, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def table(rows: list[dict], columns: tuple[tuple[str, str], ...], *, css: str,
          optional: tuple[str, ...] = ()) -> SafeString | str:
    """One row per entry; an ``optional`` column no entry has a value for is left out."""
    if not rows:
        return ""
    shown = [(key, heading) for key, heading in columns
             if key not in optional or any(row.get(key) not in (None, "") for row in rows)]
    head = format_html_join("", "<th>{}</th>", ((heading,) for _, heading in shown))
    body = format_html_join("", "<tr>{}</tr>", (
        (format_html_join("", "<td>{}</td>", ((cell(key, row.get(key)),) for key, _ in shown)),) for row in rows))
    return format_html('<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', css, head, body)


def pages_table(scan: Any) -> SafeString | str:
    return table(entries(scan, "pages"), PAGE_COLUMNS, css="scan-pages", optional=("final_url", "error"))


def cookies_table(cookies: list[dict], *, css: str = "scan-cookies") -> SafeString | str:
    if not cookies:
        return ""
    before = sum(c.get("phase") == "before_consent" for c in cookies)
    third = sum(c.get("third_party") is True for c in cookies)
    return format_html("<p>{} cookie(s): {} before consent, {} third-party</p>{}", len(cookies), before, third,
                       table(cookies, COOKIE_COLUMNS, css=css))


def storage_table(scan: Any) -> SafeString | str:
    return table(entries(scan, "storage"), STORAGE_COLUMNS, css="scan-storage")


def requests_table(scan: Any) -> SafeString | str:
    return table(entries(scan, "requests"), REQUEST_COLUMNS, css="scan-requests")


def refused_table(scan: Any) -> SafeString | str:
    return table(entries(scan, "refused"), REFUSED_COLUMNS, css="scan-refused")


def consent_table(scan: Any) -> SafeString | str:
    consent = scan.get("consent") if isinstance(scan, dict) else None
    if not isinstance(consent, dict) or not consent:
        return ""
    rows = [(heading, cell(key, consent.get(key))) for key, heading in CONSENT_ROWS
            if key in consent and consent.get(key) not in (None, "")]
    if not rows:
        return ""
    return format_html('<table class="scan-consent"><tbody>{}</tbody></table>',
                       format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))


def execution_url(execution_id: Any) -> str:
    try:
        return reverse("admin:history_jobexecution_change", args=[execution_id])
    except NoReverseMatch:
        return ""


def changes_html(changes: Any) -> SafeString | str:
    """The changes since the previous scan: a table each for new, gone and
    moved cookies, and a link to the scan they were compared with."""
    if not isinstance(changes, dict):
        return ""
    if changes.get("since") is None:
        return format_html('<p class="scan-baseline">{}</p>',
                           "The first scan of this schedule: the baseline later scans are compared with "
                           "(it raises no alert).")
    previous = format_html('<a class="previous-scan" href="{}">the previous scan</a>', execution_url(changes["since"]))
    sections = [(heading, entries(changes, key), key) for key, heading in CHANGE_SECTIONS]
    sections = [(heading, cookies, key) for heading, cookies, key in sections if cookies]
    if not sections:
        return format_html("<p>No cookie is new, gone or moved before consent since {}.</p>", previous)
    body = format_html_join("", "<h4>{} ({})</h4>{}", (
        (heading, len(cookies), table(cookies, COOKIE_COLUMNS, css=f"changes-{key}")) for heading, cookies, key in sections))
    return format_html("<p>Compared with {}.</p>{}", previous, body)
