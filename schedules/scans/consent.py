"""Consent: finding the banner's "accept" button and clicking it.

With a schedule's ``accept_selector`` that selector is looked for, in every
frame of the page. Without one, the accept buttons of the common consent
managers are (the ids and attributes their published banners use; DuckDuckGo's
autoconsent rules are the reference for which managers matter). Either way the
outcome is recorded as ``{selector, found, clicked}``, plus the manager's name
when one was detected.
"""

from __future__ import annotations

import logging

from playwright.async_api import Error as PlaywrightError

logger = logging.getLogger("schedules.scans")

# (consent manager, its "accept all" button)
KNOWN_MANAGERS = (
    ("OneTrust", "#onetrust-accept-btn-handler"),
    ("Cookiebot", "#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll"),
    ("Cookiebot", "#CybotCookiebotDialogBodyButtonAccept"),
    ("Usercentrics", "[data-testid='uc-accept-all-button']"),
    ("Didomi", "#didomi-notice-agree-button"),
    ("Quantcast", ".qc-cmp2-summary-buttons button[mode='primary']"),
    ("TrustArc", "#truste-consent-button"),
    ("Sourcepoint", "button.sp_choice_type_11"),
    ("consentmanager", "#cmpwelcomebtnyes"),
    ("Complianz", ".cmplz-btn.cmplz-accept"),
    ("CookieYes", ".cky-btn-accept"),
    ("Osano", ".osano-cm-accept-all"),
    ("iubenda", ".iubenda-cs-accept-btn"),
    ("Klaro", ".cm-btn-accept-all"),
    ("Borlabs", "a._brlbs-btn-accept-all"),
    ("Termly", "[data-tid='banner-accept']"),
    ("Cookie Notice", "#cn-accept-cookie"),
    ("Cookie Consent (Osano open source)", ".cc-btn.cc-allow"),
    ("Shopify", "#shopify-pc__banner__btn-accept"),
    ("Google Funding Choices", ".fc-cta-consent"),
)


async def find(page, selector: str, *, wait_ms: float) -> tuple[object, str, str] | None:
    """The first visible accept button (locator, selector, manager) on the
    page or in one of its frames, waiting up to ``wait_ms`` for it to appear."""
    candidates = [("", selector)] if selector else list(KNOWN_MANAGERS)
    either = ", ".join(sel for _name, sel in candidates)
    if wait_ms > 0:
        try:
            await page.locator(either).first.wait_for(state="visible", timeout=wait_ms)
        except PlaywrightError:
            pass  # not in the main frame (yet): the frames are looked through below
    for frame in page.frames:
        for manager, sel in candidates:
            locator = frame.locator(sel).first
            try:
                if await locator.is_visible():
                    return locator, sel, manager
            except PlaywrightError as exc:
                if selector:  # the schedule's own selector is not valid CSS: say so once
                    raise ValueError(f"accept_selector {selector!r} cannot be used: {_first_line(exc)}") from None
    return None


async def click(locator) -> str | None:
    """Clicks; returns why it could not, or None."""
    try:
        await locator.click(timeout=5000)
    except PlaywrightError as exc:
        return _first_line(exc)
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n", 1)[0][:300]
