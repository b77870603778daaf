"""The kiosk in Debian's Chromium, through platform -> bridge -> pcscd -> virtual card.

Every page state checked is screenshotted (artifacts/screenshots/kiosk/) and run through
axe-core (no serious or critical violations).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webapp.demo_data import library_number
from webapp.library_demo import PATRONS
from webapp.terminals.models import TerminalKind

from .conftest import KioskDriver

pytestmark = pytest.mark.e2e

VALID, PAUL, BLOCKED, EXPIRED, LOST, JAPANESE = PATRONS


def heading(kiosk: KioskDriver, screen: str) -> str:
    return str(kiosk.page.locator(f'[data-screen="{screen}"] h1').inner_text()).strip()


def history(kiosk: KioskDriver) -> list[str]:
    return list(kiosk.page.evaluate("window.kiosk.history"))


def sign_in_with(kiosk: KioskDriver, card_path: object, pin: str = "1234") -> None:
    kiosk.tap(card_path)  # type: ignore[arg-type]
    kiosk.wait_screen("pin")
    kiosk.enter_pin(pin)


def test_new_card_registers_rerolls_and_links_in_five_screens(kiosk: KioskDriver) -> None:
    page = kiosk.page
    kiosk.check("start")
    kiosk.tap(kiosk.card())
    kiosk.wait_screen("pin")
    assert "3" in page.locator("#pin-tries").inner_text()
    page.click('button[data-digit="1"]')
    page.click('button[data-digit="2"]')
    kiosk.check("pin-two-digits")
    assert page.locator("#pin-display .filled").count() == 2
    page.click('button[data-digit="3"]')
    page.click('button[data-digit="4"]')
    page.click('button[data-pin="ok"]')
    kiosk.wait_screen("mykey")
    first = page.locator("#mykey-id").inner_text()
    assert re.fullmatch(r"[2-9A-Z]{4}-[2-9A-Z]{4}", first)
    assert page.locator('[data-when="created"]').is_visible()
    kiosk.check("mykey-new")
    page.click("#reroll")
    page.wait_for_function(f"() => document.getElementById('mykey-id').textContent !== {first!r}")
    kiosk.check("mykey-rerolled")
    page.click('[data-screen="mykey"] button[data-goto="link"]')
    kiosk.wait_screen("link")
    page.get_by_role("button", name="いちまい市立中央図書館").click()
    kiosk.check("link-terms")
    page.check("#accept-terms")
    # The demo library checks its own password (SIP2): the password field is offered.
    assert page.is_visible("#library-password") and page.is_visible("#link-claim")
    page.fill("#customer-number", "0000000012")  # bad 7DR check digit
    page.fill("#library-password", PAUL.password)
    page.click('#link-form button[type="submit"]')
    page.wait_for_selector("#link-error:not([hidden])")
    kiosk.check("link-bad-number")
    page.fill("#customer-number", PAUL.number)
    page.fill("#library-password", PAUL.password)
    page.click('#link-form button[type="submit"]')
    kiosk.wait_screen("links")
    assert PAUL.number in page.locator("#link-list").inner_text()
    assert page.locator("#link-list .link-state").count() == 0  # verified by the library
    assert page.input_value("#library-password") == ""
    kiosk.check("links")
    screens = history(kiosk)
    assert screens[screens.index("start") :] == ["start", "pin", "mykey", "link", "links"]
    assert len(set(screens)) <= 5
    page.get_by_role("button", name=re.compile("解除|Unlink")).click()
    page.wait_for_selector("#no-links:not([hidden])")
    kiosk.check("links-unlinked")


def open_link_form(kiosk: KioskDriver, card: object) -> None:
    """Sign in with `card` and open the library's link form, terms accepted."""
    sign_in_with(kiosk, card)
    kiosk.wait_screen("mykey")
    kiosk.page.click('[data-screen="mykey"] button[data-goto="link"]')
    kiosk.wait_screen("link")
    kiosk.page.get_by_role("button", name="いちまい市立中央図書館").click()
    kiosk.page.check("#accept-terms")


def finish(kiosk: KioskDriver) -> None:
    kiosk.remove()
    kiosk.wait_screen("start")


def test_the_library_password_verifies_a_number_and_the_owner_replaces_a_squatter(
    kiosk: KioskDriver,
) -> None:
    """Through kiosk page -> platform -> bus -> the counter's bridge (the library's SIP2
    connector) -> the demo library system."""
    page = kiosk.page
    squatter, owner, stranger = kiosk.card(), kiosk.card(), kiosk.card()
    # A squatter claims the owner's number without the password: a claim, marked so.
    open_link_form(kiosk, squatter)
    page.fill("#customer-number", JAPANESE.number)
    page.click("#link-claim")
    kiosk.wait_screen("links")
    assert page.locator("#link-list .link-state").count() == 1
    kiosk.check("claimed-not-verified")
    finish(kiosk)
    # The owner: a wrong password first (nothing linked), then the right one (verified).
    open_link_form(kiosk, owner)
    page.fill("#customer-number", JAPANESE.number)
    page.fill("#library-password", "wrong-password")
    page.click('#link-form button[type="submit"]')
    page.wait_for_selector("#link-error:not([hidden])")
    assert page.input_value("#library-password") == ""
    kiosk.check("wrong-library-password")
    page.fill("#library-password", JAPANESE.password)  # 図書館パス66
    page.click('#link-form button[type="submit"]')
    kiosk.wait_screen("links")
    assert JAPANESE.number in page.locator("#link-list").inner_text()
    assert page.locator("#link-list .link-state").count() == 0
    kiosk.check("verified-by-library")
    finish(kiosk)
    # The squatter's claim went to the one who proved the number.
    sign_in_with(kiosk, squatter)
    kiosk.wait_screen("mykey")
    page.click('[data-screen="mykey"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    assert page.is_visible("#no-links")
    finish(kiosk)
    # A stranger cannot claim a verified number, even with its password.
    open_link_form(kiosk, stranger)
    page.fill("#customer-number", JAPANESE.number)
    page.fill("#library-password", JAPANESE.password)
    page.click('#link-form button[type="submit"]')
    page.wait_for_selector("#link-error:not([hidden])")
    assert page.evaluate("document.getElementById('kiosk').dataset.current") == "link"
    assert "verified" in page.inner_text("#link-error") or "確認済み" in page.inner_text(
        "#link-error"
    )
    kiosk.check("number-verified-elsewhere")
    finish(kiosk)


def test_registered_card_opens_its_mykey_id(kiosk: KioskDriver) -> None:
    sign_in_with(kiosk, kiosk.card("registered"))
    kiosk.wait_screen("mykey")
    shown = kiosk.page.locator("#mykey-id").inner_text().replace("-", "")
    assert shown == kiosk.stack.registered_mykey
    assert kiosk.page.locator('[data-when="opened"]').is_visible()
    assert not kiosk.page.locator('[data-when="can-reroll"]').is_visible()
    kiosk.check("mykey-registered")
    kiosk.page.click('[data-screen="mykey"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    assert library_number(1) in kiosk.page.locator("#link-list").inner_text()
    kiosk.check("links-registered")
    kiosk.page.click('[data-screen="links"] button[data-action="end"]')
    kiosk.wait_screen("start")


def test_wrong_pin_then_last_try_needs_a_retap_and_confirmation(kiosk: KioskDriver) -> None:
    page = kiosk.page
    card = kiosk.card()
    sign_in_with(kiosk, card, "9999")
    page.wait_for_selector("#pin-error:not([hidden])")
    assert "暗証番号が違います" in page.locator("#pin-error").inner_text()
    assert "2" in page.locator("#pin-tries").inner_text()
    kiosk.check("pin-wrong")
    kiosk.enter_pin("9999")
    # One try left, and the card has not left the reader since: no page can use the last
    # try now (the bridge waits for the card to be taken off and put back); the page
    # says so.
    kiosk.wait_screen("error")
    assert heading(kiosk, "error") == "暗証番号の入力は残り1回です"
    assert "もう一度置いてください" in page.locator("#error-action").inner_text()
    kiosk.check("error-retap")
    kiosk.remove()
    kiosk.wait_screen("start")
    kiosk.tap(card)
    kiosk.wait_screen("pin")
    page.wait_for_selector("#last-try:not([hidden])")  # re-tapped: confirm, then the PIN
    assert page.locator("#pin-entry").is_hidden()
    kiosk.check("pin-last-try")
    page.click("#last-try-confirm")
    kiosk.enter_pin("1234")
    kiosk.wait_screen("mykey")


def test_locked_card_explains_where_to_reset(kiosk: KioskDriver) -> None:
    kiosk.tap(kiosk.card("locked"))
    kiosk.wait_screen("error")
    assert heading(kiosk, "error") == "暗証番号がロックされています"
    assert "市区町村の窓口で再設定" in kiosk.page.locator("#error-explanation").inner_text()
    kiosk.check("error-locked")


def test_revoked_card_is_refused(kiosk: KioskDriver) -> None:
    kiosk.tap(kiosk.card("revoked"))
    kiosk.wait_screen("error")
    assert heading(kiosk, "error") == "このカードの電子証明書は失効しています"
    kiosk.check("error-revoked")


def test_expired_certificate_is_refused(kiosk: KioskDriver) -> None:
    now = datetime.now(UTC)
    kiosk.tap(kiosk.card(not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)))
    kiosk.wait_screen("error")
    assert heading(kiosk, "error") == "電子証明書の有効期限が切れています"
    kiosk.check("error-expired")


def test_card_removed_mid_flow_ends_the_session(kiosk: KioskDriver) -> None:
    kiosk.tap(kiosk.card())
    kiosk.wait_screen("pin")
    kiosk.remove()
    kiosk.wait_screen("start", timeout=10_000)
    assert "終了" in kiosk.page.locator("#kiosk-status").inner_text()
    kiosk.check("start-after-removal")


def test_removed_after_sign_in_ends_the_server_session_too(kiosk: KioskDriver) -> None:
    sign_in_with(kiosk, kiosk.card())
    kiosk.wait_screen("mykey")
    kiosk.remove()
    kiosk.wait_screen("start", timeout=10_000)
    reply = kiosk.page.evaluate(
        "fetch('/flow/do/me', {headers: {Accept: 'application/json'}}).then(r => r.status)"
    )
    assert reply == 409


def test_bridge_disconnected_and_back(kiosk: KioskDriver) -> None:
    bridge = kiosk.stack.bridges[kiosk.kiosk_id]
    bridge.stop()
    kiosk.page.wait_for_selector('[data-when="offline"]:not([hidden])', timeout=15_000)
    kiosk.check("start-offline")
    bridge.start()
    kiosk.stack.wait_ready(kiosk.kiosk_id)
    kiosk.page.wait_for_selector('[data-when="offline"]', state="hidden", timeout=15_000)
    sign_in_with(kiosk, kiosk.card())
    kiosk.wait_screen("mykey")


def test_a_status_reply_older_than_the_offline_event_is_dropped(kiosk: KioskDriver) -> None:
    """A poll answered while the bridge was online must not undo its later offline push."""
    page = kiosk.page
    held: list[object] = []

    def hold(route: object) -> None:
        held.append(route)

    page.route("**/terminal/status", hold)
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held, "no status poll within 10 s"
    bridge = kiosk.stack.bridges[kiosk.kiosk_id]
    bridge.stop()
    try:
        page.wait_for_selector('[data-when="offline"]:not([hidden])', timeout=15_000)
        answered = page.evaluate("() => window.kiosk.polls")
        held[0].fulfill(json={"bridge_online": True, "card": None})  # type: ignore[attr-defined]
        page.wait_for_function(f"() => window.kiosk.polls > {answered}", timeout=5_000)
        assert page.is_visible('[data-when="offline"]')
    finally:
        page.unroute("**/terminal/status")
        bridge.start()  # the kiosk stack is shared by the module's tests
        kiosk.stack.wait_ready(kiosk.kiosk_id)


def test_english_is_one_tap_away_and_the_flow_resumes(kiosk: KioskDriver) -> None:
    page = kiosk.page
    assert heading(kiosk, "start") == "マイナンバーカードをカードリーダーに置いてください"
    sign_in_with(kiosk, kiosk.card())
    kiosk.wait_screen("mykey")
    page.click('a[hreflang="en"]')
    page.wait_for_load_state()
    kiosk.wait_screen("mykey")
    assert page.locator("html").get_attribute("lang") == "en"
    assert heading(kiosk, "mykey") == "Your MyKey ID"
    kiosk.check("mykey-english")
    page.click('[data-screen="mykey"] button[data-goto="link"]')
    kiosk.wait_screen("link")
    page.get_by_role("button", name="Ichimai City Central Library").click()
    kiosk.check("link-english")
    page.click('a[hreflang="ja"]')
    page.wait_for_load_state()
    kiosk.wait_screen("mykey")
    assert heading(kiosk, "mykey") == "マイキーID"


def test_idle_timeout_ends_the_session(kiosk: KioskDriver) -> None:
    """The page's own idle timer (3 s here: the page is served with data-idle="3") ends
    the citizen's session, on the page and on the server."""

    def short_idle(route: Any) -> None:
        response = route.fetch()
        html = re.sub(r'data-idle="[0-9.]+"', 'data-idle="3"', response.text())
        route.fulfill(response=response, body=html)

    kiosk.page.route("**/kiosk/", short_idle)
    try:
        kiosk.page.reload()
        kiosk.wait_screen("start")
        sign_in_with(kiosk, kiosk.card())
        kiosk.wait_screen("mykey")
        started = time.monotonic()
        kiosk.wait_screen("start", timeout=10_000)
        assert time.monotonic() - started >= 2
        reply = kiosk.page.evaluate(
            "fetch('/flow/do/me', {headers: {Accept: 'application/json'}}).then(r => r.status)"
        )
        assert reply == 409  # the page ended the flow on the server too
    finally:
        kiosk.page.unroute("**/kiosk/")


def test_admin_and_demo_pages_pass_axe(kiosk: KioskDriver, browser: object) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, locale="ja-JP"
    )
    page = context.new_page()
    admin = KioskDriver(kiosk.stack, page, "admin", kiosk.tmp)
    page.goto(f"{kiosk.stack.url}/staff/login")
    page.fill("#login", "admin")
    page.fill("#password", "ichimai-admin-demo")
    page.locator("form button[type=submit]").last.click()
    page.goto(f"{kiosk.stack.url}/admin/terminals/")
    assert page.get_by_text(re.compile("^(Online|オンライン)$")).count() >= 2
    admin.check("terminals")
    page.get_by_role("button", name=re.compile("ペアリングコード")).first.click()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", page.locator("#pairing-code").inner_text())
    admin.check("terminals-pairing-code")
    page.goto(f"{kiosk.stack.url}/demo/reader")
    admin.check("demo-reader")
    context.close()
    assert kiosk.stack.terminals[TerminalKind.COUNTER]


def test_the_demo_panel_taps_a_card_on_the_kiosk(kiosk: KioskDriver) -> None:
    panel = kiosk.page.context.new_page()  # the same browser as the kiosk, as in a demo
    panel.goto(f"{kiosk.stack.url}/demo/reader")
    panel.click(f"form[action$='/reader/{kiosk.kiosk_id}/tap/registered'] button")
    kiosk.wait_screen("pin")  # the kiosk read the card: the panel's tap has returned
    assert kiosk.stack.readers is not None
    slot = kiosk.stack.readers.terminals[kiosk.kiosk_id].slot
    card = getattr(slot, "card", None)  # PcscSlot: the card process on the vpcd reader
    kiosk.enter_pin()
    kiosk.wait_screen("mykey")
    # The card process outlived the panel's request thread: it was started (with a
    # parent-death signal, which Linux ties to the forking *thread*) by the demo readers'
    # long-lived worker, and it is still the same card on the reader.
    if card is not None:
        assert card.process.poll() is None
        assert getattr(slot, "card", None) is card
    panel.click(f"form[action$='/reader/{kiosk.kiosk_id}/remove'] button")
    kiosk.wait_screen("start", timeout=10_000)
    panel.close()


def test_registered_card_gives_points_to_a_cause_and_reads_its_statement(
    kiosk: KioskDriver,
) -> None:
    """Card + PIN, "My points", "Give points": a cause, an amount, confirm, the receipt;
    then the statement shows the donation with the cause's name, and once past the refund
    window (compaction) only the month's total per category."""
    from webapp import db
    from webapp.demo import DEMO_CITY
    from webapp.points.models import CauseKind, MissPolicy, Municipality
    from webapp.points.officer import Officer
    from webapp.points.officer.causes import add_cause

    stack = kiosk.stack
    assert stack.app is not None
    name = f"災害復興支援 {int(time.time() * 1000) % 100000}"
    with stack.app.app_context(), db.new_session() as s:
        muni = s.query(Municipality).filter_by(code=DEMO_CITY[0]).one()
        add_cause(
            s, Officer(muni.id, "e2e"), code=f"R{int(time.time() * 1000) % 10**9}", name=name,
            description="令和の豪雨で被災した地域の復旧に使われます。", kind=CauseKind.CAUSE,
            goal_points=None, ends_at=None, miss_policy=MissPolicy.RETURN, fresh_days=30,
        )  # fmt: skip
    sign_in_with(kiosk, kiosk.card("registered"))
    kiosk.wait_screen("mykey")
    kiosk.page.click('[data-screen="mykey"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    kiosk.page.click('[data-screen="links"] button[data-action="points"]')
    kiosk.wait_screen("points")
    before = kiosk.page.locator("#points-list p").first.inner_text()
    kiosk.page.click('[data-screen="points"] button[data-action="give"]')
    kiosk.wait_screen("give")
    kiosk.page.get_by_label(re.compile(re.escape(name))).check()
    kiosk.page.fill("#give-points", "0")
    kiosk.page.click('#give-form button[type="submit"]')
    assert kiosk.page.locator("#give-error").is_visible()  # a whole number of points, 1+
    kiosk.page.fill("#give-points", "50")
    kiosk.check("give-choose")
    kiosk.page.click('#give-form button[type="submit"]')
    kiosk.wait_screen("give-confirm")
    assert kiosk.page.locator("#give-confirm-cause").inner_text() == name
    assert kiosk.page.locator("#give-confirm-points").inner_text() == "50"
    kiosk.check("give-confirm")
    kiosk.page.click("#give-confirm")
    kiosk.wait_screen("give-receipt")
    assert kiosk.page.locator("#receipt-cause").inner_text() == name
    assert kiosk.page.locator("#receipt-points").inner_text() == "50"
    assert kiosk.page.locator("#receipt-number").inner_text().isdigit()
    kiosk.check("give-receipt")
    kiosk.page.click('[data-screen="give-receipt"] button[data-action="points"]')
    kiosk.wait_screen("points")
    kiosk.page.wait_for_function(
        "() => document.querySelector('#points-list .statement li[data-kind=\"donation\"]')"
    )
    line = kiosk.page.locator('#points-list .statement li[data-kind="donation"]').first
    assert name in line.inner_text() and "-50" in line.inner_text()
    after = kiosk.page.locator("#points-list p").first.inner_text()
    number = lambda text: int(re.sub(r"\D", "", text.split(":")[-1]))  # noqa: E731
    assert number(after) == number(before) - 50
    kiosk.check("statement")
    # Past the refund window (`flask points compact` with the clock moved on), the gift
    # is kept as the month's total for donations, labelled, with no cause named.
    from webapp.points.retention import compact

    with stack.app.app_context(), db.new_session() as s:
        compact.compact(s, now=datetime.now(UTC) + timedelta(days=400))
    kiosk.page.click('[data-screen="points"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    kiosk.page.click('[data-screen="links"] button[data-action="points"]')
    kiosk.wait_screen("points")
    kiosk.page.wait_for_function("() => document.querySelector('#points-list .monthly li')")
    monthly = kiosk.page.locator("#points-list .monthly").first.inner_text()
    assert re.search(r"\d{4}-\d{2} .+ -[\d,]+", monthly) and name not in monthly
    assert not kiosk.page.locator('#points-list .statement li[data-kind="donation"]').count()
    assert number(kiosk.page.locator("#points-list p").first.inner_text()) == number(after)
    kiosk.check("statement-monthly")
    kiosk.page.click('[data-screen="points"] button[data-action="end"]')
    kiosk.wait_screen("start")
