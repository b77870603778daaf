"""The merchant terminal in Chromium: amount, PIN pad, confirm, receipt (screenshots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.counter_stack import page
from tests.functional.test_points_terminal import PASSWORD, Till, till

__all__ = ["page", "till"]
pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "points"


def shoot(page: Any, name: str) -> None:
    """artifacts/screenshots/points/terminal-NAME.png"""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"terminal-{name}.png"), full_page=True)


def screen(page: Any, name: str) -> None:
    page.wait_for_selector(f"[data-screen='{name}']:not([hidden])", timeout=15_000)


def test_terminal_states(till: Till, page: Any) -> None:
    path, key = till.card()
    till.citizen(key)
    till.kiosk.insert(path)
    url = till.kiosk.platform.url
    page.goto(f"{url}/staff/login?lang=en")
    page.fill("#login", "museum")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    opened = page.evaluate(
        "async (u) => (await fetch(u, {method: 'POST', redirect: 'manual'})).type",
        f"{url}/points/terminal/open/{till.kiosk.terminal_id}",
    )
    assert opened == "opaqueredirect"
    page.goto(f"{url}/points/terminal/")
    screen(page, "amount")
    shoot(page, "amount-en")
    page.fill("#points", "200")
    page.click("#amount-form button[type=submit]")
    screen(page, "pin")
    for digit in "1234":
        page.click(f"[data-digit='{digit}']")
    shoot(page, "pin-en")
    page.click("[data-pin='ok']")
    screen(page, "confirm")
    assert page.text_content("#confirm-balance") == "500"
    shoot(page, "confirm-en")
    page.click("#confirm")
    screen(page, "receipt")
    assert page.text_content("#receipt-balance") == "300"
    shoot(page, "receipt-en")
    page.click("#refund")  # the customer changed their mind, at the till, card still there
    page.wait_for_selector("#refunded:not([hidden])", timeout=15_000)
    assert page.text_content("#refunded-points") == "200"
    assert page.text_content("#receipt-balance") == "500"
    assert page.is_disabled("#refund")
    shoot(page, "refunded-en")
    page.click("[data-screen='receipt'] [data-action='end']")
    screen(page, "amount")
    page.fill("#points", "900")
    page.click("#amount-form button[type=submit]")
    screen(page, "pin")
    for digit in "1234":
        page.click(f"[data-digit='{digit}']")
    page.click("[data-pin='ok']")
    screen(page, "confirm")
    assert page.is_disabled("#confirm")  # not enough points: the server would refuse too
    shoot(page, "insufficient-en")
