"""Finding a library among 5,000 at the kiosk, in Debian's Chromium: by kana, by name and
by browsing (prefecture -> municipality -> facility), in at most three actions each.

The 5,000 providers are one bulk INSERT into the stack's own database (SQLite embedded,
PostgreSQL scaled) and are deleted afterwards, so the shared stack is as it was. Every
state is screenshotted (artifacts/screenshots/kiosk/facilities-*) and run through axe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, or_, select

from tests.support.facilities import TARGET, generate_providers
from webapp import db
from webapp.demo import DemoStack
from webapp.demo_data import LOGINS
from webapp.providers.models import Provider, ProviderKind

from .conftest import SHOTS, KioskDriver, shoot_and_audit

pytestmark = pytest.mark.e2e


@pytest.fixture
def country(stack: DemoStack) -> Iterator[None]:
    """5,000 libraries in the stack's database for this test only."""
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        generate_providers(s, 5000)
    yield
    with stack.app.app_context(), db.new_session() as s:
        s.execute(
            delete(Provider).where(or_(Provider.code.like("JP-2%"), Provider.code == TARGET.code))
        )
        s.commit()


class Actions:
    """The citizen's actions (a tap, or typing into the box), counted."""

    def __init__(self, kiosk: KioskDriver) -> None:
        self.kiosk, self.count = kiosk, 0

    def tap(self, locator: object) -> None:
        self.count += 1
        locator.click()  # type: ignore[attr-defined]

    def type(self, text: str) -> None:
        self.count += 1
        self.kiosk.page.fill("#facility-q", text)


def open_finder(kiosk: KioskDriver) -> None:
    page = kiosk.page
    page.click('[data-screen="links"] button[data-goto="link"]')
    kiosk.wait_screen("link")
    page.wait_for_selector("#facility-places .place-button")


def target_button(kiosk: KioskDriver) -> object:
    return kiosk.page.locator("#facility-results").get_by_role(
        "button", name=re.compile(TARGET.name)
    )


def chosen(kiosk: KioskDriver) -> None:
    """The target's terms and the link form are shown."""
    page = kiosk.page
    page.wait_for_selector("#link-form:not([hidden])")
    page.wait_for_function(
        f"() => document.getElementById('terms-text').textContent.includes({TARGET.name!r})"
    )
    assert target_button(kiosk).get_attribute("aria-pressed") == "true"  # type: ignore[attr-defined]


def test_a_library_among_5000_by_kana_by_name_and_by_browsing(
    kiosk: KioskDriver, country: None
) -> None:
    page = kiosk.page
    kiosk.tap(kiosk.card())
    kiosk.wait_screen("pin")
    kiosk.enter_pin()
    kiosk.wait_screen("mykey")
    page.click('[data-screen="mykey"] button[data-goto="link"]')
    kiosk.wait_screen("link")
    page.wait_for_selector("#facility-places .place-button")
    # The kiosk's own town first (the demo library's いちまい市), then search and browse.
    assert page.inner_text("#h-near") == "いちまい市の施設"
    assert page.locator("#provider-list .provider-button").count() == 2
    assert page.locator("#facility-places .place-button").count() == 47
    assert page.locator("#facility-results button").count() == 0  # nothing shipped whole
    kiosk.check("facilities-finder")

    # By kana, typed in half-width katakana: type, tap.
    acts = Actions(kiosk)
    acts.type("ﾋﾋﾞﾔ")
    page.wait_for_function(
        "() => document.getElementById('facility-count').textContent.includes('1')"
    )
    assert page.locator("#facility-results button").count() == 1
    kiosk.check("facilities-by-kana")
    acts.tap(target_button(kiosk))
    chosen(kiosk)
    assert acts.count <= 3
    kiosk.check("facilities-chosen")

    # By name, from a fresh link screen: type, tap.
    page.click('[data-screen="link"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    open_finder(kiosk)
    acts = Actions(kiosk)
    acts.type("日比谷")
    target_button(kiosk).wait_for()  # type: ignore[attr-defined]
    kiosk.check("facilities-by-name")
    acts.tap(target_button(kiosk))
    chosen(kiosk)
    assert acts.count <= 3

    # A broad query: bounded pages and a spoken count, never the 5,000.
    page.fill("#facility-q", "図書館")
    page.wait_for_function(
        "() => document.getElementById('facility-count').textContent.includes('500')"
    )
    assert page.locator("#facility-results button").count() == 10
    assert page.is_visible("#facility-more")
    kiosk.check("facilities-many")
    page.click("#facility-more")
    page.wait_for_function(
        "() => document.querySelectorAll('#facility-results button').length === 20"
    )

    # By browsing, from a fresh link screen: prefecture, municipality, facility.
    page.click('[data-screen="link"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    open_finder(kiosk)
    acts = Actions(kiosk)
    acts.tap(page.locator("#facility-places").get_by_role("button", name=TARGET.prefecture_name))
    municipality = page.locator("#facility-places").get_by_role(
        "button", name=re.compile(TARGET.municipality_name)
    )
    municipality.wait_for()
    kiosk.check("facilities-prefecture")
    acts.tap(municipality)
    target_button(kiosk).wait_for()  # type: ignore[attr-defined]
    kiosk.check("facilities-municipality")
    acts.tap(target_button(kiosk))
    chosen(kiosk)
    assert acts.count <= 3
    kiosk.check("facilities-browsed")

    # Keyboard only: the box takes the platform keyboard; Enter searches at once.
    page.click('[data-screen="link"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    open_finder(kiosk)
    page.focus("#facility-q")
    page.keyboard.type("ちよだくりつ")
    page.keyboard.press("Enter")
    target_button(kiosk).wait_for()  # type: ignore[attr-defined]
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('#facility-results') !== null")
    page.keyboard.press("Enter")
    chosen(kiosk)


def test_the_admin_sets_where_a_museum_is(stack: DemoStack, browser: object) -> None:
    """The provider form: a wrong check digit said at the field (Japanese), then saved."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 1000}, locale="ja-JP"
    )
    page = context.new_page()
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        museum = s.scalar(select(Provider).where(Provider.kind == ProviderKind.MUSEUM))
        assert museum is not None
        museum_id, before = museum.id, (museum.municipality_code, museum.municipality_name)
    try:
        page.goto(f"{stack.url}/staff/login")
        page.fill("#login", "admin")
        page.fill("#password", LOGINS["admin"][0])
        page.locator("form button[type=submit]").last.click()
        page.goto(f"{stack.url}/admin/providers/{museum_id}")
        page.fill("#municipality_code", "131017")
        page.fill("#municipality_name", "千代田区")
        page.locator("form.stack button[type=submit]").last.click()
        page.wait_for_selector("#municipality_code-error")
        assert "検査数字" in page.inner_text("#municipality_code-error")
        shoot_and_audit(page, SHOTS / "provider-place-refused.png", "place refused")
        page.fill("#municipality_code", before[0] or "131997")
        page.fill("#municipality_name", before[1] or "いちまい市")
        page.locator("form.stack button[type=submit]").last.click()
        page.wait_for_url("**saved=1")
        shoot_and_audit(page, SHOTS / "provider-place-saved.png", "place saved")
    finally:
        context.close()
