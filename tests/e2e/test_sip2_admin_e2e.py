"""The library system (SIP2) page in Chromium: the passwords sealed by the page itself
(WebCrypto, seal.js) to the demo counter's bridge, Test connection through that bridge to
the demo library system, a wrong login password said as such, and put right again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from webapp import db
from webapp.demo import LOGINS, DemoStack
from webapp.library_demo import LOGIN_PASSWORD
from webapp.sip2.models import LibrarySip2

from .conftest import shoot_and_audit

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "sip2"


def test_the_admin_seals_the_passwords_and_tests_the_connection(
    stack: DemoStack, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="ja-JP")
    page = context.new_page()
    try:
        page.goto(f"{stack.url}/staff/login?lang=en")
        page.fill("#login", "library-admin")
        page.fill("#password", LOGINS["library-admin"][0])
        page.locator("form button[type=submit]").last.click()
        page.goto(f"{stack.url}/admin/providers/{stack.library_id}")
        assert "connected" in page.inner_text("#sip2-link")
        page.click("#sip2-link a")
        page.wait_for_selector("#test-connection")
        shoot_and_audit(page, SHOTS / "01-connected.png", "sip2 page")
        page.click("#test-connection")
        page.wait_for_selector("#test-result")
        assert "63" in page.inner_text("#test-result")
        shoot_and_audit(page, SHOTS / "02-test-ok.png", "test ok")

        def save(password: str) -> None:
            page.fill("#login-password", password)
            with page.expect_navigation(url="**/sip2?saved=1"):
                page.click("#sip2-form button[type=submit]")
            assert page.input_value("#login-password") == ""

        save("not-the-login-password")
        with stack.app.app_context(), db.new_session() as s:
            row = s.get(LibrarySip2, stack.library_id)
            assert row is not None
            assert "not-the-login-password" not in str(row.login_password)
        page.click("#test-connection")
        page.wait_for_selector(".alert-error")
        assert "93" in page.inner_text(".alert-error")
        shoot_and_audit(page, SHOTS / "03-login-refused.png", "login refused")
        save(LOGIN_PASSWORD)  # as the demo was: the kiosk tests verify through it
        page.click("#test-connection")
        page.wait_for_selector("#test-result")
    finally:
        context.close()
