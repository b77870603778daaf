"""The front door and the staff homes in Chromium, on the demo stack: `/` answers with the
ways in; every demo role signs in from it and reaches its work in one click. axe-core
checks and screenshots (artifacts/screenshots/front/) of / and of each role's home."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shoot_and_audit
from webapp.demo import DemoStack
from webapp.demo_data import demo_logins

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "front"
PASSWORDS = {login: password for login, password, _role in demo_logins()}

# Each demo login: the one click on its staff home that opens its work, and what shows.
WORK = {
    "counter": (("button", "窓口を開く"), "**/counter/", "#counter"),
    "library-admin": (("link", "端末"), "**/admin/terminals/", "#terminal-kind"),
    "admin": (("link", "施設"), "**/admin/providers/", "main table"),
    "museum-till": (
        ("button", "美術館レジ1 を開く"),
        "**/points/terminal/",
        "[data-screen='amount']",
    ),
    "city-points": (("link", "ポイント集計"), "**/points/municipality", "main table"),
}


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies), Japanese first."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    yield context.new_page()
    context.close()


def test_the_front_door_shows_the_ways_in(stack: DemoStack, page: Any) -> None:
    reply = page.goto(f"{stack.url}/")
    assert reply is not None and reply.status == 200
    main = page.locator("main")
    for href in ("/home/", "/staff/login", "/demo/reader"):
        assert main.locator(f"a[href='{href}']").count() == 1, href
    table = main.locator("table").inner_text()
    assert all(login in table and password in table for login, password in PASSWORDS.items())
    assert "キオスク" in main.inner_text() and "いちまい市立中央図書館" in main.inner_text()
    shoot_and_audit(page, SHOTS / "front-ja.png", "front door (ja)")

    page.locator(".lang-toggle").get_by_role("link", name="English").click()
    page.wait_for_url("**/?lang=en")
    assert "Staff sign-in" in page.locator("main").inner_text()
    assert "Ichimai City Central Library" in page.locator("main").inner_text()
    shoot_and_audit(page, SHOTS / "front-en.png", "front door (en)")


@pytest.mark.parametrize("login", list(WORK))
def test_every_role_signs_in_and_reaches_its_work_in_one_click(
    stack: DemoStack, page: Any, login: str
) -> None:
    page.goto(f"{stack.url}/")
    page.locator("main").get_by_role("link", name="職員サインイン").click()
    page.fill("#login", login)
    page.fill("#password", PASSWORDS[login])
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/staff/")
    shoot_and_audit(page, SHOTS / f"home-{login}.png", f"staff home of {login}")

    (kind, name), url, shows = WORK[login]
    # The navigation bar offers the same pages (a till's own screen has none: it faces
    # the customer).
    nav = page.locator(".site-nav")
    assert nav.get_by_role("link", name="職員ホーム").count() == 1
    if kind == "link":
        assert nav.get_by_role("link", name=name, exact=True).count() == 1
    page.locator("main").get_by_role(kind, name=re.compile(f"^{re.escape(name)}")).first.click()
    page.wait_for_url(url)
    page.wait_for_selector(shows)
