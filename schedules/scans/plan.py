"""Plan: which pages one scan visits, as its scan settings (customPages, scanDepth...) say.

The home page is depth 0 and always first; ``customPages`` come next, in every
scan; with ``allow_deep_scan`` the links of the same site are followed
breadth-first up to ``scanDepth``; ``maxPages`` caps them all.
Unset settings take ScanProfile's defaults.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from schedules.scans.parties import host_of, site_of

DEFAULT_MAX_PAGES = 50
DEFAULT_SCAN_DEPTH = 5


def _count(value, default: int, *, minimum: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(minimum, value)
    return default


@dataclass(frozen=True)
class ScanPlan:
    home: str
    custom_pages: tuple[str, ...]
    deep: bool
    depth: int
    max_pages: int
    accept_selector: str

    @classmethod
    def of(cls, *, domain: str, scheme: str, scan_settings: dict) -> "ScanPlan":
        wanted = scan_settings  # the schedule's merged scan settings
        pages = wanted.get("customPages") or []
        selector = wanted.get("accept_selector")
        return cls(
            home=f"{scheme}://{domain}/",
            custom_pages=tuple(f"{scheme}://{domain}{page}" for page in pages
                               if isinstance(page, str) and page.startswith("/")),
            deep=wanted.get("allow_deep_scan") is True,
            depth=_count(wanted.get("scanDepth"), DEFAULT_SCAN_DEPTH, minimum=0),
            max_pages=_count(wanted.get("maxPages"), DEFAULT_MAX_PAGES, minimum=1),
            accept_selector=selector.strip() if isinstance(selector, str) else "",
        )


@dataclass
class Frontier:
    """The pages still to visit, in order: home, custom pages, then links
    breadth-first. Each URL (without its fragment) is visited once."""

    plan: ScanPlan
    _queue: deque = field(default_factory=deque)
    _seen: set = field(default_factory=set)
    visited: int = 0

    def __post_init__(self) -> None:
        self._site = site_of(host_of(self.plan.home))
        self._add(self.plan.home, 0)
        for url in self.plan.custom_pages:
            self._add(url, 0)

    def _add(self, url: str, depth: int) -> None:
        url = urldefrag(url).url
        if url not in self._seen:
            self._seen.add(url)
            self._queue.append((url, depth))

    def next(self) -> tuple[str, int] | None:
        if self.visited >= self.plan.max_pages or not self._queue:
            return None
        self.visited += 1
        return self._queue.popleft()

    def found_links(self, links: list[str], *, on_page: str, depth: int) -> None:
        """Links of a page at ``depth``: kept when deep scans are allowed, they
        belong to the same site and their depth is within scanDepth."""
        if not self.plan.deep or depth + 1 > self.plan.depth:
            return
        for link in links:
            url = urljoin(on_page, link)
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and site_of(host_of(url)) == self._site:
                self._add(url, depth + 1)
