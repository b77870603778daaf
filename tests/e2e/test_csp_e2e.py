"""Every main page obeys the Content-Security-Policy in Chromium: no console report of a
"Content Security Policy" violation and no `securitypolicyviolation` event, on the
counter (with a card tapped, so the barcode and the live socket are exercised), the
kiosk, the citizen's home page, the admin pages, the points pages, the till and the demo
reader panel. Screenshots go to artifacts/screenshots/csp/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from webapp import db
from webapp.demo import LOGINS, OFFICER_LOGIN, TILL_LOGIN, DemoStack
from webapp.points.models import Merchant, Program
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.models import Terminal, TerminalKind

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "csp"
# Runs before any page script (through the DevTools protocol, which the policy does not
# govern): every violation the page reports is kept for the test to read.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""
SETTLED = "() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))"


class Visitor:
    """One browser context (one signed-in person) collecting CSP reports."""

    def __init__(self, browser: Any, stack: DemoStack) -> None:
        self.stack = stack
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", self._on_console)
        self.reports: list[str] = []

    def _on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(f"{self.page.url}: {message.text}")

    def settle(self, name: str) -> None:
        """Let the page's scripts run their first turn, keep its reports, screenshot it."""
        self.page.wait_for_load_state("load")
        self.page.evaluate(SETTLED)
        self.reports += [f"{self.page.url}: {r}" for r in self.page.evaluate("window.__csp")]
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def visit(self, path: str, name: str) -> None:
        """Open `path` and check it."""
        response = self.page.goto(f"{self.stack.url}{path}")
        assert response is not None and response.status < 500, (path, response)
        headers = response.headers
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), path
        self.settle(name)

    def sign_in(self, login: str, password: str) -> None:
        self.page.goto(f"{self.stack.url}/staff/login?lang=en")
        self.settle(f"login-{login}")
        self.page.fill("#login", login)
        self.page.fill("#password", password)
        self.page.locator("form button[type=submit]").last.click()
        self.page.wait_for_load_state("load")

    def assert_clean(self) -> None:
        assert not self.console, "\n".join(self.console)
        assert not self.reports, "\n".join(self.reports)


@pytest.fixture
def visitors(browser: Any, stack: DemoStack) -> Iterator[Any]:
    made: list[Visitor] = []

    def make() -> Visitor:
        made.append(Visitor(browser, stack))
        return made[-1]

    yield make
    for visitor in made:
        visitor.context.close()


def test_admin_pages_obey_the_policy(stack: DemoStack, visitors: Any) -> None:
    admin = visitors()
    admin.visit("/", "front")
    admin.visit("/home/", "home")
    admin.visit("/no/such/page", "not-found")
    admin.sign_in("admin", LOGINS["admin"][0])
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        provider = s.scalars(select(Provider.id).order_by(Provider.id)).first()
        till = s.get(Terminal, stack.terminals[TerminalKind.MERCHANT])
        assert till is not None
    for path, name in [
        ("/staff/", "staff-home"),
        ("/staff/password", "password"),
        ("/admin/", "admin"),
        ("/admin/staff", "admin-staff"),
        ("/admin/staff/new", "admin-staff-new"),
        ("/admin/providers/", "admin-providers"),
        ("/admin/providers/new", "admin-provider-new"),
        (f"/admin/providers/{provider}", "admin-provider"),
        (f"/admin/providers/{provider}/terms", "admin-terms"),
        (f"/admin/providers/{stack.library_id}/sip2", "admin-sip2"),
        ("/admin/sessions/", "admin-sessions"),
        ("/admin/identity/conflicts", "admin-identity-conflicts"),
        ("/bridge/", "bridge-download"),
        ("/demo/reader", "demo-reader"),
        (f"/admin/terminals/?provider_id={till.provider_id}", "admin-terminals-tills"),
        ("/admin/terminals/", "admin-terminals"),
    ]:
        admin.visit(path, name)
    admin.page.get_by_role(
        "button", name=re.compile("キオスクとして開く|Open as kiosk")
    ).first.click()
    admin.page.wait_for_url("**/kiosk/")
    admin.page.wait_for_selector("#kiosk[data-current='start']")
    admin.settle("kiosk")
    admin.assert_clean()


def test_counter_and_points_pages_obey_the_policy(stack: DemoStack, visitors: Any) -> None:
    counter = visitors()
    counter.sign_in("counter", LOGINS["counter"][0])
    terminal = stack.terminals[TerminalKind.COUNTER]
    counter.visit("/counter/", "counter-choose")
    counter.page.click(f"form[action$='/open/{terminal}'] button")
    counter.page.wait_for_selector("#reader-state[data-online='true']", timeout=20_000)
    assert stack.readers is not None
    stack.readers.tap(terminal, "registered")
    counter.page.wait_for_selector("#result-barcode svg", timeout=20_000)
    counter.settle("counter-barcode")
    stack.readers.remove(terminal)
    counter.assert_clean()

    officer = visitors()
    officer.sign_in(*OFFICER_LOGIN)
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        program = s.scalars(select(Program.id).order_by(Program.id)).first()
        merchant = s.scalars(select(Merchant.id).order_by(Merchant.id)).first()
    for path, name in [
        ("/points/municipality", "points-municipality"),
        ("/points/grants", "points-grants"),
        ("/points/programs", "points-programs"),
        (f"/points/programs/{program}", "points-program"),
        ("/points/merchants", "points-merchants"),
        (f"/points/merchants/{merchant}", "points-merchant"),
        ("/points/partners", "points-partners"),
        ("/points/policy", "points-policy"),
        ("/points/audit", "points-audit"),
    ]:
        officer.visit(path, name)
    officer.assert_clean()

    till = visitors()
    till.sign_in(*TILL_LOGIN)
    with second_till(stack):  # with one till, the list page goes straight to it
        till.visit("/points/terminal/tills", "points-tills")
        till.page.locator("form[action*='/points/terminal/open/'] button").first.click()
    till.page.wait_for_url("**/points/terminal/")
    till.settle("points-till")
    till.visit("/points/merchant/settlement", "points-settlement")
    till.visit("/points/merchant/refunds", "points-refunds")
    till.assert_clean()


@contextmanager
def second_till(stack: DemoStack) -> Iterator[None]:
    """Another till of the demo museum for as long as the block runs."""
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        first = s.get(Terminal, stack.terminals[TerminalKind.MERCHANT])
        assert first is not None
        extra = services.create_terminal(
            s,
            first.provider_id,
            TerminalKind.MERCHANT,
            "美術館レジ2",
            merchant_id=first.merchant_id,
        ).id
    try:
        yield
    finally:
        with stack.app.app_context(), db.new_session() as s:
            s.execute(delete(Terminal).where(Terminal.id == extra))
            s.commit()
