"""The sessions admin page in Chromium: a kiosk opened in one browser, its binding revoked
from another (CSRF on), the kiosk's next load back at sign-in; a cookie copied before
sign-out refused after it; axe-core checks and screenshots in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import shoot_and_audit as audit
from webapp import db
from webapp.demo_data import ensure_providers
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services
from webapp.terminals.models import TerminalKind
from webapp.terminals.testing import LivePlatform

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "admin"
PASSWORD = "library admin password"


@dataclass(frozen=True)
class Site:
    platform: LivePlatform
    kiosk: int


@pytest.fixture
def site(tmp_path: Path, deployment: str) -> Iterator[Site]:
    with LivePlatform(
        tmp_path, extra={"WTF_CSRF_ENABLED": True}, deployment=deployment
    ) as platform:
        with platform.app.app_context(), db.new_session() as s:
            demo = ensure_providers(s)
            staff_services.create_staff(
                s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.library.id
            )
            staff_services.create_staff(s, "clerk", PASSWORD, Role.COUNTER_STAFF, demo.library.id)
            kiosk = services.create_terminal(
                s, demo.library.id, TerminalKind.KIOSK, "ロビーのキオスク"
            )
            kiosk_id = kiosk.id
        yield Site(platform, kiosk_id)


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    """A factory of fresh browser contexts (separate cookie jars), closed afterwards."""
    made: list[Any] = []

    def new() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


def sign_in(page: Any, url: str, login: str, lang: str = "ja") -> None:
    page.goto(f"{url}/staff/login?lang={lang}")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_an_admin_revokes_a_kiosk_and_ends_a_session(site: Site, contexts: Any) -> None:
    url = site.platform.url
    kiosk_context = contexts()
    kiosk = kiosk_context.new_page()
    sign_in(kiosk, url, "libadmin")
    kiosk.goto(f"{url}/admin/terminals/")
    kiosk.locator("tr", has_text="ロビーのキオスク").get_by_role(
        "button", name="この端末でキオスクとして開く"
    ).click()
    kiosk.wait_for_url(f"{url}/kiosk/")
    [cookie] = [c for c in kiosk_context.cookies() if c["name"] == "session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0

    clerk_context = contexts()
    clerk = clerk_context.new_page()
    sign_in(clerk, url, "clerk")

    admin = contexts().new_page()
    sign_in(admin, url, "libadmin")
    admin.get_by_role("link", name="セッション").first.click()
    admin.wait_for_url(f"{url}/admin/sessions/")
    assert "clerk" in admin.locator("table").first.inner_text()
    bindings = admin.locator("table").nth(1)
    assert "ロビーのキオスク" in bindings.inner_text()
    audit(admin, SHOTS / "sessions-ja.png", "sessions-ja")

    bindings.get_by_role("button", name="結び付けを解除する").click()
    admin.wait_for_load_state()
    assert "終了したセッション：1件" in admin.locator("[role=status]").inner_text()
    assert "ブラウザーに結び付いたキオスク" in admin.inner_text("main")
    kiosk.goto(f"{url}/kiosk/")
    assert "/staff/login" in kiosk.url  # no terminal any more: back to sign-in

    # End the clerk's session from the table: the clerk's next page is the sign-in.
    row = admin.locator("tr", has_text="clerk")
    row.get_by_role("button", name="終了する").click()
    admin.wait_for_load_state()
    clerk.goto(f"{url}/staff/")
    assert "/staff/login" in clerk.url

    admin.goto(f"{url}/admin/sessions/?lang=en")
    assert "Kiosk and home bindings" in admin.inner_text("main")
    audit(admin, SHOTS / "sessions-en.png", "sessions-en")


def test_a_cookie_copied_before_sign_out_is_refused_after_it(site: Site, contexts: Any) -> None:
    url = site.platform.url
    first = contexts()
    page = first.new_page()
    sign_in(page, url, "libadmin")
    copied = [c for c in first.cookies() if c["name"] == "session"]
    page.get_by_role("button", name="サインアウト").click()
    page.wait_for_url(f"{url}/staff/login")
    thief_context = contexts()
    thief_context.add_cookies(copied)
    thief = thief_context.new_page()
    thief.goto(f"{url}/admin/sessions/")
    assert "/staff/login" in thief.url
