"""A renewed or replaced card keeps its MyKey ID, links and points, end to end: Debian's
Chromium on the kiosk and the counter, the platform (either deployment), `python -m
bridge run` on pcscd, virtual cards of the fake J-LIS (renew / reissue).

- with J-LIS's linkage imported: the new card opens the same ID at the kiosk and the same
  library number at the counter; the old card is refused everywhere as revoked;
- without the linkage, through "I have a new card" (old card + PIN, new card + PIN);
- a lost card's replacement: never through the two-card step with the revoked old card,
  only through the linkage.

Screens of the two-card step are saved under artifacts/screenshots/kiosk/ (axe-checked).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from webapp import db
from webapp.bus import get_bus
from webapp.cardflow import verifier_for
from webapp.cardflow.cli import CRL_CHANNEL
from webapp.demo import DEMO_PIN, LOGINS, DemoStack
from webapp.demo_data import ensure_providers, library_number
from webapp.identity import services as identity
from webapp.identity.models import Verification
from webapp.points import programs
from webapp.points.models import Program
from webapp.terminals.models import TerminalKind

from .conftest import KioskDriver
from .test_home_e2e import HomeBrowser, home

__all__ = ["home"]

pytestmark = pytest.mark.e2e


@dataclass
class Citizen:
    """A card bound to a MyKey ID with a staff-verified library number and 500 points."""

    card: Path
    mykey: str
    number: str


def make_citizen(kiosk: KioskDriver, n: int, **issue: Any) -> Citizen:
    return seed_citizen(kiosk.stack, kiosk.card(**issue), n)


def seed_citizen(stack: DemoStack, card: Path, n: int) -> Citizen:
    """Bind `card` to a new MyKey ID with library number `n` (staff-verified), 500 points."""
    app = stack.app
    assert app is not None
    number = library_number(n)
    with app.app_context(), db.new_session() as s:
        verified = verifier_for(app).identify(CardFile.load(card).data.auth_cert_der)
        mykey, _ = identity.open_or_create(s, verified.card_key, verified.not_after)
        library = ensure_providers(s).library
        identity.link(s, mykey.id, library, number, library.terms_version, Verification.STAFF)
        program = s.scalars(select(Program).order_by(Program.id)).first()
        assert program is not None
        programs.grant(
            s,
            program.id,
            mykey.id,
            key=f"renewal-e2e-{uuid.uuid4().hex}",
            directory=app.extensions["points_directory"],
        )
        s.commit()
        return Citizen(card, mykey.id, number)


def successor(kiosk: KioskDriver, old: Path, *, lost: bool = False) -> Path:
    """The fake J-LIS renews (or re-issues) the card; every worker reloads the CRL."""
    return renew(kiosk.stack, old, lost=lost)


def renew(stack: DemoStack, old: Path, *, lost: bool = False) -> Path:
    """`successor` for a stack."""
    issued = (stack.jlis.reissue if lost else stack.jlis.renew)(CardFile.load(old).data)
    path = old.with_name(f"{old.stem}-{'reissued' if lost else 'renewed'}.json")
    CardFile.create(path, card_data_from_issued(issued, pin=DEMO_PIN, sign_password="ABC123"))
    assert stack.app is not None
    verifier_for(stack.app).revocation.refresh_all()
    get_bus(stack.app).publish(CRL_CHANNEL, {"refresh": True})
    return path


def import_linkage(stack: DemoStack) -> None:
    assert stack.app is not None
    runner = stack.app.test_cli_runner()
    result = runner.invoke(
        args=["jpki", "import-linkage", str(stack.jlis.directory / "linkage.json")]
    )
    assert result.exit_code == 0, result.output


class CounterTab:
    """The librarian's counter tab of the demo stack."""

    def __init__(self, stack: DemoStack, page: Any) -> None:
        self.stack, self.page = stack, page
        self.terminal = stack.terminals[TerminalKind.COUNTER]
        page.goto(f"{stack.url}/staff/login?lang=en")
        page.fill("#login", "counter")
        page.fill("#password", LOGINS["counter"][0])
        page.click("button[type=submit]")
        page.goto(f"{stack.url}/counter/")
        page.click(f"form[action$='/open/{self.terminal}'] button")
        page.wait_for_selector("#reader-state[data-online='true']", timeout=20_000)

    def tap(self, card: Path, state: str) -> None:
        assert self.stack.readers is not None
        self.stack.readers.tap(self.terminal, card)
        try:
            self.page.wait_for_selector(f"#counter[data-state='{state}']", timeout=20_000)
        finally:
            self.stack.readers.remove(self.terminal)

    def number(self) -> str:
        """The library number shown (digits in mode A, encoded in the barcode in B)."""
        digits = self.page.locator("#result-number")
        if digits.is_visible():
            return str(digits.inner_text()).strip()
        encoded = self.page.get_attribute("#result-barcode svg", "data-encoded") or ""
        return re.sub(r"[^0-9]", "", encoded)


@pytest.fixture
def counter(stack: DemoStack, browser: Any) -> Iterator[CounterTab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield CounterTab(stack, context.new_page())
    finally:
        context.close()


def kiosk_sign_in(kiosk: KioskDriver, card: Path) -> None:
    kiosk.tap(card)
    kiosk.wait_screen("pin")
    kiosk.enter_pin()
    kiosk.wait_screen("mykey")


def shown_id(kiosk: KioskDriver) -> str:
    return str(kiosk.page.locator("#mykey-id").inner_text()).replace("-", "")


def assert_links_and_points(kiosk: KioskDriver, citizen: Citizen) -> None:
    page = kiosk.page
    page.click('[data-screen="mykey"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    assert citizen.number in page.locator("#link-list").inner_text()
    page.click('[data-screen="links"] button[data-action="points"]')
    kiosk.wait_screen("points")
    assert re.search(r"\b500\b", page.locator("#points-list").inner_text())


def assert_refused_as_revoked(
    kiosk: KioskDriver, counter: CounterTab, card: Path, *, renewed: bool = True
) -> None:
    """Refused at the counter and at the kiosk; the kiosk tells a renewed card's holder
    to use the new card (a lost card's: that it is revoked)."""
    counter.tap(card, "error:revoked")
    kiosk.tap(card)
    kiosk.wait_screen("error")
    title = kiosk.page.locator("#h-error").inner_text()
    assert ("更新済み" in title) if renewed else ("失効" in title), title
    kiosk.page.click('[data-screen="error"] button[data-action="end"]')
    kiosk.wait_screen("start")
    kiosk.remove()


def finish(kiosk: KioskDriver) -> None:
    kiosk.remove()
    kiosk.wait_screen("start")


def test_renewed_card_through_the_linkage(kiosk: KioskDriver, counter: CounterTab) -> None:
    citizen = make_citizen(kiosk, 61)
    new = successor(kiosk, citizen.card)
    import_linkage(kiosk.stack)
    counter.tap(new, "result:B")
    assert citizen.number in counter.number()
    kiosk_sign_in(kiosk, new)
    assert shown_id(kiosk) == citizen.mykey
    assert_links_and_points(kiosk, citizen)
    finish(kiosk)
    assert_refused_as_revoked(kiosk, counter, citizen.card)


def test_renewed_card_through_the_two_card_step(kiosk: KioskDriver, counter: CounterTab) -> None:
    page = kiosk.page
    soon = datetime.now(UTC) + timedelta(days=40)
    citizen = make_citizen(kiosk, 62, not_after=soon)
    # In its last 3 months the card says when it ends and what renewal will take here.
    kiosk_sign_in(kiosk, citizen.card)
    assert page.locator("#cert-end").is_visible()
    assert page.locator('[data-when="renew-two-cards"]').is_visible()
    kiosk.check("renewal-reminder")
    finish(kiosk)
    new = successor(kiosk, citizen.card)
    # Before the move the new card is nobody's at the counter.
    counter.tap(new, "error:not_registered")
    kiosk.check("start-new-card-offer")
    page.get_by_role(
        "button", name=re.compile("新しいカードを持っています|I have a new card")
    ).click()
    kiosk.wait_screen("renew-old")
    kiosk.check("renew-old-card")
    kiosk.tap(citizen.card)
    kiosk.wait_screen("pin")
    assert page.locator("#pin-which").is_visible()
    kiosk.check("renew-old-pin")
    kiosk.enter_pin()
    kiosk.wait_screen("renew-new")
    kiosk.check("renew-new-card")
    kiosk.tap(citizen.card)  # the old card again, taken off and put back: not the new one
    page.wait_for_selector("#renew-error:not([hidden])")
    assert kiosk.page.evaluate("document.getElementById('kiosk').dataset.current") == "renew-new"
    kiosk.check("renew-same-card")
    kiosk.tap(new)  # the old card leaves the reader, the new one arrives
    kiosk.wait_screen("pin")
    kiosk.enter_pin()
    kiosk.wait_screen("mykey")
    assert shown_id(kiosk) == citizen.mykey
    assert page.locator('[data-when="moved"]').is_visible()
    kiosk.check("renew-moved")
    assert_links_and_points(kiosk, citizen)
    finish(kiosk)
    counter.tap(new, "result:B")
    assert citizen.number in counter.number()
    kiosk_sign_in(kiosk, new)
    assert shown_id(kiosk) == citizen.mykey
    finish(kiosk)
    assert_refused_as_revoked(kiosk, counter, citizen.card)
    screens = list(page.evaluate("window.kiosk.history"))
    assert "renew-old" in screens and "renew-new" in screens


def test_lost_cards_replacement_only_through_the_linkage(
    kiosk: KioskDriver, counter: CounterTab
) -> None:
    page = kiosk.page
    citizen = make_citizen(kiosk, 63)
    new = successor(kiosk, citizen.card, lost=True)
    page.get_by_role(
        "button", name=re.compile("新しいカードを持っています|I have a new card")
    ).click()
    kiosk.wait_screen("renew-old")
    kiosk.tap(citizen.card)
    kiosk.wait_screen("error")
    assert "移せません" in page.locator("#h-error").inner_text()
    assert page.locator("#pin-entry").is_hidden()
    kiosk.check("renew-lost-card-refused")
    page.click('[data-screen="error"] button[data-action="end"]')
    kiosk.wait_screen("start")
    kiosk.remove()
    counter.tap(new, "error:not_registered")
    import_linkage(kiosk.stack)
    counter.tap(new, "result:B")
    assert citizen.number in counter.number()
    kiosk_sign_in(kiosk, new)
    assert shown_id(kiosk) == citizen.mykey
    assert_links_and_points(kiosk, citizen)
    finish(kiosk)
    assert_refused_as_revoked(kiosk, counter, citizen.card, renewed=False)


def test_at_home_through_the_two_card_step(
    home: HomeBrowser, stack: DemoStack, tmp_path: Path
) -> None:
    """The citizen's own reader: the old card is on it when the page opens (refused on its
    own as revoked; they choose "I have a new card"), then they swap the cards."""
    page = home.page
    old = tmp_path / "home-old.json"
    CardFile.create(
        old, card_data_from_issued(stack.jlis.issue(), pin=DEMO_PIN, sign_password="ABC123")
    )
    citizen = seed_citizen(stack, old, 64)
    new = renew(stack, old)
    page.goto(f"{home.url}/home/?lang=ja")
    page.get_by_role("button", name="自分のカードリーダーを使う").click()
    page.wait_for_selector("#pairing-code", timeout=30_000)
    code = page.locator("#pairing-code").inner_text().strip()
    pair = home.run_shown(page.locator("#pair-command").inner_text().strip(), "--name", "renew")
    assert pair.wait(timeout=60) == 0 and code
    home.bridge = home.run_shown("ichimai-bridge run", "--sim", str(old), "--keyboard", "none")
    home.wait_screen("error")  # the old card alone: revoked (superseded) for the kiosk
    assert "更新済み" in page.locator("#h-error").inner_text()
    assert "新しいカードを持っています" in page.locator("#error-action").inner_text()
    home.check("old-card-renewed")
    page.click('[data-screen="error"] button[data-action="end"]')
    home.wait_screen("start")
    page.get_by_role("button", name="新しいカードを持っています").click()
    home.wait_screen("pin")  # the old card, already on the reader
    assert "古いカード" in page.locator("#pin-which").inner_text()
    for digit in DEMO_PIN:
        page.click(f'button[data-digit="{digit}"]')
    page.click('button[data-pin="ok"]')
    home.wait_screen("renew-new")
    home.check("renew-new-card")
    home.stop()  # the old card off the reader, the new one on it
    home.bridge = home.run_shown("ichimai-bridge run", "--sim", str(new), "--keyboard", "none")
    home.wait_screen("pin")
    assert "新しいカード" in page.locator("#pin-which").inner_text()
    for digit in DEMO_PIN:
        page.click(f'button[data-digit="{digit}"]')
    page.click('button[data-pin="ok"]')
    home.wait_screen("mykey")
    assert page.locator("#mykey-id").inner_text().replace("-", "") == citizen.mykey
    assert page.locator('[data-when="moved"]').is_visible()
    home.check("renew-moved")
