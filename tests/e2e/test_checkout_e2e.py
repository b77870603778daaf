"""An online purchase end to end, in Debian's Chromium: the demo shop (webapp/demo_shop.py,
its own Flask app on its own port) → the platform's checkout page → card and PIN through
the citizen's own card reader at home (a real `python -m bridge` process, paired from
/home, with a freshly issued card) → back to the shop, which checks the signed result and
shows the order paid; the shop's webhook arrives signed; a partial refund from the
shop's order page (the refund API); the citizen's statement at home shows the purchase
and the refund; the ledger's invariants hold after each step.

Screenshots of each page state in artifacts/screenshots/checkout/, each checked by axe
(the platform's pages; the demo shop is not the platform's and is only screenshotted).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from webapp import db
from webapp.cardflow import verifier_for
from webapp.demo import DEMO_CITY, DEMO_PIN, DemoStack
from webapp.demo_data import OFFICER_LOGIN
from webapp.identity import services as identity
from webapp.points import invariants, programs
from webapp.points.checkout.models import Checkout
from webapp.points.models import Municipality, Program
from webapp.points.spend import spendable

from .conftest import ROOT, shoot_and_audit
from .test_home_e2e import WAIT_MS, HomeBrowser

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "artifacts" / "screenshots" / "checkout"


@pytest.fixture
def citizen(stack: DemoStack, browser: Any, tmp_path: Path) -> Iterator[tuple[HomeBrowser, str]]:
    """A citizen with a card of their own (500 points granted), at /home in a fresh browser."""
    assert stack.app is not None
    issued = stack.jlis.issue()
    card = tmp_path / "mine.json"
    CardFile.create(card, card_data_from_issued(issued, pin=DEMO_PIN, sign_password="ABC123"))
    with stack.app.app_context(), db.new_session() as s:
        seen = verifier_for(stack.app).identify(issued.auth_cert_der)
        mykey, _ = identity.open_or_create(s, seen.card_key, seen.not_after)
        muni = s.scalar(select(Municipality).where(Municipality.code == DEMO_CITY[0]))
        assert muni is not None
        vol = s.scalar(
            select(Program).where(Program.municipality_id == muni.id, Program.code == "VOL")
        )
        assert vol is not None
        programs.grant(
            s, vol.id, mykey.id, key=f"e2e-checkout-{mykey.id}",
            directory=stack.app.extensions["points_directory"],
        )  # fmt: skip
        mykey_id = mykey.id
    context = browser.new_context(viewport={"width": 1024, "height": 1366}, locale="ja-JP")
    home = HomeBrowser(context.new_page(), stack.url, tmp_path)
    home.card = card  # type: ignore[attr-defined]
    yield home, mykey_id
    home.stop()
    context.close()


def shot(page: Any, name: str, *, audit: bool = True) -> None:
    page.wait_for_timeout(150)
    if audit:
        shoot_and_audit(page, SHOTS / f"{name}.png", name)
    else:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def holds(stack: DemoStack) -> None:
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        assert invariants.violations(s) == {}


def balance(stack: DemoStack, mykey_id: str) -> int:
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        muni = s.scalar(select(Municipality).where(Municipality.code == DEMO_CITY[0]))
        assert muni is not None
        return spendable(s, muni.id, mykey_id)


def wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.textContent || '').includes(text)",
        arg=[selector, text],
        timeout=WAIT_MS,
    )


def test_buy_at_the_demo_shop_pay_at_home_refund_part_and_see_it_on_the_statement(
    citizen: tuple[HomeBrowser, str], stack: DemoStack
) -> None:
    home, mykey_id = citizen
    page = home.page
    # The citizen's card reader at home, paired from /home (as test_home_e2e does).
    page.goto(f"{stack.url}/home/?lang=ja")
    page.get_by_role("button", name="自分のカードリーダーを使う").click()
    page.wait_for_selector("#pairing-code", timeout=WAIT_MS)
    paired = home.run_shown(page.locator("#pair-command").inner_text().strip(), "--name", "home")
    assert paired.wait(timeout=60) == 0
    card = home.tmp / "reader-card.json"
    shutil.copy(home.card, card)  # type: ignore[attr-defined]
    home.bridge = home.run_shown("ichimai-bridge run", "--sim", str(card), "--keyboard", "none")
    home.wait_screen("pin")

    # 1. The shop: one product, bought with points.
    page.goto(f"{stack.shop_url}/")
    shot(page, "01-shop", audit=False)
    with page.expect_navigation():
        page.click("#buy")
    assert "/checkout/co_" in page.url and page.url.startswith(stack.url)
    page.wait_for_selector("#checkout-begin", timeout=WAIT_MS)
    assert "物産オンラインショップ" in page.inner_text("#checkout-shop")
    assert page.inner_text("#checkout-points").strip() == "300"
    order = page.inner_text("#checkout-order").strip()
    assert order.startswith("order-")
    shot(page, "02-checkout-ja")

    # 2. Card and PIN through the home bridge, then confirm.
    page.click("#checkout-begin")
    page.wait_for_function("() => window.checkout?.screen === 'pin'", timeout=WAIT_MS)
    shot(page, "03-checkout-pin-ja")
    for digit in DEMO_PIN:
        page.click(f'button[data-digit="{digit}"]')
    page.click('button[data-pin="ok"]')
    page.wait_for_function("() => window.checkout?.screen === 'confirm'", timeout=WAIT_MS)
    assert page.inner_text("#confirm-balance").strip() == "500"
    shot(page, "04-checkout-confirm-ja")
    page.click("#checkout-pay")
    page.wait_for_function("() => window.checkout?.screen === 'paid'", timeout=WAIT_MS)
    assert page.inner_text("#paid-balance").strip() == "200"
    shot(page, "05-checkout-paid-ja")

    # 3. Back at the shop, which checked the signature of the result.
    page.wait_for_url(f"{stack.shop_url}/return?*", timeout=WAIT_MS)
    assert page.locator("#result").get_attribute("data-status") == "paid"
    assert mykey_id not in page.url  # the shop never learns who paid
    shot(page, "06-shop-paid", audit=False)
    assert balance(stack, mykey_id) == 200
    holds(stack)

    # 4. The signed webhook reaches the shop (the demo's delivery loop).
    page.click("#order-link")
    for _ in range(30):
        if "checkout.paid" in page.inner_text("#events"):
            break
        page.wait_for_timeout(500)
        page.reload()
    assert "checkout.paid" in page.inner_text("#events")
    assert page.inner_text("#status").strip() == "paid"
    assert stack.shop_app is not None
    assert stack.shop_app.extensions["demo_shop"].bad_signatures == 0

    # 5. A partial refund from the shop's order page (the refund API).
    page.fill("#refund-amount", "100")
    with page.expect_navigation():
        page.click("#refund")
    assert "Refunded 100 points (200 still refundable)" in page.inner_text("#refund-result")
    for _ in range(30):
        if "checkout.refunded" in page.inner_text("#events"):
            break
        page.wait_for_timeout(500)
        page.reload()
    assert page.inner_text("#refunded").strip() == "100"
    shot(page, "07-shop-refunded", audit=False)
    # More than is left is refused, with the platform's words.
    page.fill("#refund-amount", "201")
    with page.expect_navigation():
        page.click("#refund")
    assert "exceed" in page.inner_text("#refund-result")
    assert balance(stack, mykey_id) == 300
    holds(stack)
    assert stack.app is not None
    with stack.app.app_context(), db.new_session() as s:
        row = s.scalar(select(Checkout).where(Checkout.reference == order))
        assert row is not None and row.status == "paid"

    # 6. The citizen's statement at home: the purchase and the refund.
    page.goto(f"{stack.url}/home/")
    home.wait_screen("pin")
    for digit in DEMO_PIN:
        page.click(f'button[data-digit="{digit}"]')
    page.click('button[data-pin="ok"]')
    home.wait_screen("mykey")
    page.click('[data-screen="mykey"] button[data-goto="links"]')
    home.wait_screen("links")
    page.click('[data-screen="links"] button[data-action="points"]')
    home.wait_screen("points")
    wait_text(page, "#points-list", "300")
    statement = page.inner_text("#points-list .statement")
    assert statement.count("物産オンラインショップ") >= 2, statement
    shot(page, "08-statement-ja")
    holds(stack)


def test_a_cancelled_checkout_goes_back_signed_and_a_forged_result_is_refused(
    citizen: tuple[HomeBrowser, str], stack: DemoStack
) -> None:
    home, _ = citizen
    page = home.page
    page.goto(f"{stack.shop_url}/")
    with page.expect_navigation():
        page.click("#buy")
    page.wait_for_selector('[data-action="cancel"]', timeout=WAIT_MS)
    # No card reader in this browser: the page says how to set one up.
    assert page.locator("#checkout-begin").count() == 0
    shot(page, "09-checkout-no-reader-ja")
    page.locator('[data-action="cancel"]').first.click()
    page.wait_for_url(f"{stack.shop_url}/return?*", timeout=WAIT_MS)
    assert page.locator("#result").get_attribute("data-status") == "cancelled"
    forged = page.url.replace("status=cancelled", "status=paid")
    page.goto(forged)
    assert "refused" in page.inner_text("#result")
    # The checkout page of a cancelled order says so, with the way back.
    checkout_id = page.url.split("checkout=")[1].split("&")[0]
    page.goto(f"{stack.url}/checkout/{checkout_id}?lang=en")
    assert "cancelled" in page.inner_text("#h-closed")
    shot(page, "10-checkout-closed-en")


def test_the_officer_sets_up_an_online_shop_its_key_works_and_failed_webhooks_show(
    stack: DemoStack, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, locale="ja-JP")
    page = context.new_page()
    url = stack.url
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", OFFICER_LOGIN[0])
    page.fill("#password", OFFICER_LOGIN[1])
    with page.expect_navigation():
        page.click("main button[type=submit]")
    page.goto(f"{url}/points/merchants")
    page.fill("#code", "NET2")
    page.fill("#name", "いちまい市 第二ネットショップ")
    page.select_option("#category", "online_goods")
    with page.expect_navigation():
        page.locator("form[action$='/points/merchants'] button[type=submit]").click()
    merchant_page = page.url.split("?")[0]
    assert page.locator("#online-shop").count() == 1
    # A refused origin says why and saves nothing.
    page.fill("#origins", "http://shop.example.jp/path")
    with page.expect_navigation():
        page.locator("form[action$='/shop'] button[type=submit]").click()
    assert "オリジン" in page.locator(".alert-error").inner_text()
    shot(page, "11-officer-shop-refused-ja")
    page.fill("#origins", stack.shop_url)
    page.fill("#webhook_url", f"{stack.shop_url}/webhook")
    with page.expect_navigation():
        page.locator("form[action$='/shop'] button[type=submit]").click()
    secret = page.inner_text("[data-testid=signing-secret]").strip()
    assert secret.startswith("whsec_")
    shot(page, "12-officer-shop-secret-shown-once-ja")
    with page.expect_navigation():
        page.locator("form[action$='/shop/keys'] button[type=submit]").click()
    key = page.inner_text("[data-testid=api-key]").strip()
    assert key.startswith("icm_")
    page.goto(merchant_page)
    assert key not in page.content() and secret not in page.content()

    # The key works against the shop API; the webhook goes to the demo shop, which has
    # another secret: it refuses the signature, and the officer sees the delivery retried.
    made = urllib.request.Request(  # noqa: S310  (our own test server)
        f"{url}/api/v1/shop/checkouts",
        data=json.dumps(
            {"amount": 10, "reference": "net2-1", "return_url": f"{stack.shop_url}/return"}
        ).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(made, timeout=10) as answer:  # noqa: S310
        checkout = json.load(answer)["checkout"]
    page.goto(checkout["url"])
    page.locator('[data-action="cancel"]').first.click()
    page.wait_for_url(f"{stack.shop_url}/return?*", timeout=WAIT_MS)
    for _ in range(30):
        page.goto(merchant_page)
        if page.locator("tr[data-delivery]").count():
            break
        page.wait_for_timeout(500)
    row = page.locator("tr[data-delivery]").first
    assert "checkout.cancelled" in row.inner_text() and "HTTP 400" in row.inner_text()
    shot(page, "13-officer-shop-ja")
    page.goto(f"{merchant_page}?lang=en")
    shot(page, "14-officer-shop-en")
    page.goto(f"{url}/points/audit?lang=ja")
    actions = page.locator("tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions[:3] == ["shop.key_issue", "shop.settings", "merchant.create"]
    assert secret not in page.content()
    context.close()
    holds(stack)
