"""Values tests read out of rendered forms, as a browser would submit them."""

from __future__ import annotations

import re


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in a page."""
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def grant_key(html: str) -> str:
    """The idempotency key of the points grant form."""
    match = re.search(r'name="key" type="hidden" value="([0-9a-f]{32})"', html) or re.search(
        r'id="key" name="key" type="hidden" value="([0-9a-f]{32})"', html
    )
    assert match, "no idempotency key in the page"
    return match.group(1)
