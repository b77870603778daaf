"""A municipality's points, from nothing to every way a point moves, in Chromium through
the real card stack (pcscd, vpcd readers, the virtual card, paired bridges), in either
deployment.

The platform admin adds the municipality with its first administrator, who adds its
points officer; the officer sets it up through the UI (a program, a partner-bonus budget, a shop
with a till and its staff, a partner with its terms and key, a cause, two crowdfunding
projects). Then one citizen's points move every way they can: a grant from the grants
page; a conversion by the partner's API (with its bonus); a payment at the new till (the
card on the till's reader, the PIN on the till's pad); a donation and two pledges at the
kiosk; the projects settled (one met its goal, one missed and returned its points); an
online purchase at the town's online shop (set up by the officer in the UI: its origins,
signing secret and API key; the demo shop app runs it) paid at home through the
citizen's own bridge (paired from /home, on the till's pcscd reader once the till is
done), with a partial refund by the shop. The ledger's invariants are checked after each
step, and the citizen's statement at the kiosk shows each of them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KioskDriver, shoot_and_audit
from webapp import db
from webapp.demo import DEMO_PIN, LOGINS, ROOT, BridgeProcess, DemoStack, _env
from webapp.demo_shop import create_shop
from webapp.devserver import local_server, serve_app
from webapp.places.codes import with_check_digit
from webapp.points import invariants
from webapp.staff.models import Role

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "points-walk"
PASSWORD = "walk town points officer password"
ADMIN_PASSWORD = "walk town administrator password"
TILL_PASSWORD = "walk town till staff password"
CODE = with_check_digit("13198")  # no real municipality has this number (see DEMO_CITY)
TOWN = "ひとめぐり町"


@dataclass
class Walk:
    stack: DemoStack
    officer: Any  # the officer's page
    url: str

    def check(self, step: str) -> None:
        """Every ledger invariant holds after `step`."""
        assert self.stack.app is not None
        with self.stack.app.app_context(), db.new_session() as s:
            assert invariants.violations(s) == {}, step

    def shot(self, page: Any, name: str) -> None:
        shoot_and_audit(page, SHOTS / f"{name}.png", name)

    def submit(self, form: str, page: Any = None) -> None:
        page = page or self.officer
        with page.expect_navigation():
            page.locator(f"form[action$='{form}'] button[type=submit]").click()

    def success(self) -> str:
        status = self.officer.locator(".alert-success")
        assert status.count() == 1, self.officer.locator(".alert-error").all_inner_texts()
        return str(status.inner_text())


def _signed_in(browser: Any, url: str, login: str, password: str) -> tuple[Any, Any]:
    """A fresh browser context signed in as `login`; (context, page)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="ja-JP")
    page = context.new_page()
    page.goto(f"{url}/staff/login?lang=ja")
    page.fill("#login", login)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    return context, page


@pytest.fixture
def walk(stack: DemoStack, browser: Any) -> Iterator[Walk]:
    """The municipality made in the UI: the platform admin adds it with its first
    administrator, who adds its points officer; the officer signed in."""
    url = stack.url
    context, page = _signed_in(browser, url, "admin", LOGINS["admin"][0])
    page.goto(f"{url}/admin/municipalities/new")
    page.fill("#code", CODE)
    page.fill("#name", TOWN)
    page.fill("#login", "walk-admin")
    page.fill("#password", ADMIN_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="作成").click()
    assert TOWN in page.content()
    context.close()

    context, page = _signed_in(browser, url, "walk-admin", ADMIN_PASSWORD)
    page.goto(f"{url}/admin/staff/new")
    page.fill("#login", "walk-officer")
    page.fill("#password", PASSWORD)
    page.select_option("#role", Role.POINTS_OFFICER.value)
    with page.expect_navigation():
        page.get_by_role("button", name="作成").click()
    assert "walk-officer" in page.content()
    shoot_and_audit(page, SHOTS / "officer-created-ja.png", "officer-created")
    context.close()

    context, page = _signed_in(browser, url, "walk-officer", PASSWORD)
    yield Walk(stack, page, url)
    context.close()


def choose(page: Any, select: str, text: str) -> None:
    """Select the option of `select` whose label contains `text`."""
    value = page.locator(f"{select} option", has_text=text).first.get_attribute("value")
    page.select_option(select, value=value)


def _set_up(walk: Walk) -> dict[str, Any]:
    """The officer's part, all in the UI; what the citizen's steps need."""
    page, url = walk.officer, walk.url
    page.goto(f"{url}/points/programs")
    page.fill("#code", "kenko")
    page.fill("#name", "健康ポイント")
    page.select_option("#category", "health_checkup")
    page.fill("#points_per_grant", "1000")
    page.fill("#budget", "100000")
    walk.submit("/points/programs")
    page.goto(f"{url}/points/programs")
    page.fill("#code", "bonus")
    page.fill("#name", "地域経済応援ボーナス")
    page.select_option("#category", "partner_bonus")
    page.fill("#points_per_grant", "1")
    page.fill("#budget", "100000")
    walk.submit("/points/programs")

    page.goto(f"{url}/points/merchants")
    page.fill("#code", "walkshop")
    page.fill("#name", "ひとめぐり商店")
    page.select_option("#category", "shop")
    walk.submit("/points/merchants")
    page.fill("#till_name", "商店のレジ")
    walk.submit("/tills")
    page.fill("#login", "walk-till")
    page.fill("#password", TILL_PASSWORD)
    walk.submit("/staff")
    page.locator("form[action*='/pairing-code'] button").click()
    page.wait_for_selector("[data-testid=pairing-code]")
    pairing_code = page.inner_text("[data-testid=pairing-code]").strip()
    till_id = int(
        re.search(r"/tills/(\d+)/pairing-code", page.content()).group(1)  # type: ignore[union-attr]
    )

    page.goto(f"{url}/points/partners")
    page.fill("#code", "walk-card")
    page.fill("#name", "ひとめぐりカード")
    page.select_option("#kind", "credit_card")
    walk.submit("/points/partners")
    partner_page = page.url.split("?")[0]
    page.fill("#rate_num", "1")
    page.fill("#rate_den", "2")
    page.fill("#bonus_bp", "1000")  # 10 %
    choose(page, "#bonus_program_id", "地域経済応援ボーナス")
    page.fill("#min_unit", "100")
    page.fill("#hold_days", "0")
    walk.submit(partner_page.removeprefix(url))
    assert "保存しました" in walk.success()
    walk.submit("/keys")
    key = page.inner_text("[data-testid=api-key]").strip()

    last_day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    causes = {}
    for code, name, kind, goal in (
        ("relief", "豪雨災害復興支援", "cause", None),
        ("library", "図書館に絵本を(達成)", "project", 100),
        ("bench", "駅前にベンチを(未達)", "project", 10000),
    ):
        page.goto(f"{url}/points/causes")
        page.fill("#code", code)
        page.fill("#name", name)
        page.select_option("#kind", kind)
        if goal is not None:
            page.fill("#goal_points", str(goal))
            page.fill("#ends_on", last_day)
        page.select_option("#miss_policy", "return")
        page.fill("#fresh_days", "30")
        walk.submit("/points/causes")
        assert "作成しました" in walk.success()
        causes[code] = name
    walk.shot(page, "cause-ja")

    # The town's online shop: origins, signing secret and API key, each shown once.
    shop_server = local_server(None, 0)
    shop_url = f"http://127.0.0.1:{shop_server.server_port}"
    page.goto(f"{url}/points/merchants")
    page.fill("#code", "walknet")
    page.fill("#name", "ひとめぐり物産ネット")
    page.select_option("#category", "online_goods")
    walk.submit("/points/merchants")
    page.fill("#origins", shop_url)
    page.fill("#webhook_url", f"{shop_url}/webhook")
    walk.submit("/shop")
    secret = page.inner_text("[data-testid=signing-secret]").strip()
    walk.submit("/shop/keys")
    shop_key = page.inner_text("[data-testid=api-key]").strip()
    walk.shot(page, "online-shop-key-ja")
    shop = create_shop(url, shop_key, secret, shop_url, name="ひとめぐり物産ネット")
    serve_app(shop_server, shop)
    threading.Thread(target=shop_server.serve_forever, daemon=True).start()
    walk.check("set up")
    return {
        "pairing_code": pairing_code, "till_id": till_id, "key": key, "causes": causes,
        "shop_url": shop_url, "shop": shop, "shop_server": shop_server,
    }  # fmt: skip


def _grant(walk: Walk, mykey_id: str) -> None:
    page = walk.officer
    page.goto(f"{walk.url}/points/grants")
    page.fill("#mykey_id", mykey_id)
    choose(page, "#program_id", "健康ポイント")
    walk.submit("/points/grants")
    assert "1000" in walk.success().replace(",", "")
    walk.check("grant")


def _convert(walk: Walk, key: str, mykey_id: str) -> None:
    body = {
        "municipality": CODE,
        "mykey_id": mykey_id,
        "partner_points": 1000,
        "reference": f"walk-{mykey_id}",
    }
    asked = urllib.request.Request(  # noqa: S310  (our own test server)
        f"{walk.url}/api/v1/partners/conversions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(asked, timeout=15) as answer:  # noqa: S310
        converted = json.load(answer)["conversion"]
    assert (converted["base_points"], converted["status"]) == (500, "posted")
    assert converted["points"] == 550  # 10 % bonus from the bonus program
    walk.check("conversion")


def _pay_at_the_till(walk: Walk, browser: Any, tmp: Path, till: dict[str, Any], card: Path) -> None:
    """The shop's new till: a bridge paired with the code the officer was shown, on the
    session's free reader; its staff open it; the card on its reader, 300 points."""
    stack = walk.stack
    assert stack.harness is not None, "the walk needs pcscd"
    reader = stack.harness.readers[1]  # the reader the demo leaves free for tests
    home = tmp / "till-bridge"
    env = _env({"ICHIMAI_BRIDGE_HOME": str(home)})
    subprocess.run(
        [sys.executable, "-m", "bridge", "pair", walk.url, till["pairing_code"], "--home",
         str(home), "--name", "walk till bridge"],
        check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env["PCSCLITE_CSOCK_NAME"] = str(stack.harness.socket_path)
    bridge = BridgeProcess(home, tmp / "till-bridge.log", ["--keyboard", "none"], env)
    bridge.args += ["--reader", reader.name]
    bridge.start()
    attached = None
    context = browser.new_context(viewport={"width": 1024, "height": 900}, locale="ja-JP")
    try:
        stack.wait_ready(till["till_id"])
        page = context.new_page()
        page.goto(f"{walk.url}/staff/login?lang=ja")
        page.fill("#login", "walk-till")
        page.fill("#password", TILL_PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        page.goto(f"{walk.url}/points/terminal/tills")  # their only till: opened at once
        page.wait_for_url("**/points/terminal/")
        assert "商店のレジ" in page.locator(".kiosk-place").inner_text()
        attached = stack.harness.attach(card, reader)
        page.wait_for_selector("[data-screen='amount']:not([hidden])")
        page.fill("#points", "300")
        page.click("#amount-form button[type=submit]")
        page.wait_for_selector("[data-screen='pin']:not([hidden])", timeout=20_000)
        for digit in "1234":
            page.click(f"[data-digit='{digit}']")
        page.click("[data-pin='ok']")
        page.wait_for_selector("[data-screen='confirm']:not([hidden])", timeout=20_000)
        page.click("#confirm")
        page.wait_for_selector("[data-screen='receipt']:not([hidden])", timeout=20_000)
        walk.shot(page, "till-receipt-ja")
        page.click("[data-screen='receipt'] [data-action='end']")
    finally:
        if attached is not None:
            attached.remove()
        context.close()
        bridge.stop()
    walk.check("till payment")


def _buy_online(walk: Walk, browser: Any, tmp: Path, set_up: dict[str, Any], card: Path) -> None:
    """At the town's online shop: buy (300 points), pay on the checkout page through the
    citizen's own bridge at home (paired from /home, on the till's pcscd reader), back to
    the shop paid; the shop refunds 120 of it by the API."""
    from tests.e2e.test_home_e2e import WAIT_MS, HomeBrowser

    stack = walk.stack
    assert stack.harness is not None
    reader = stack.harness.readers[1]
    context = browser.new_context(viewport={"width": 1024, "height": 1366}, locale="ja-JP")
    home = HomeBrowser(context.new_page(), walk.url, tmp)
    home.env["PCSCLITE_CSOCK_NAME"] = str(stack.harness.socket_path)
    attached = None
    try:
        page = home.page
        page.goto(f"{walk.url}/home/?lang=ja")
        page.get_by_role("button", name="自分のカードリーダーを使う").click()
        page.wait_for_selector("#pairing-code", timeout=WAIT_MS)
        command = page.locator("#pair-command").inner_text().strip()
        assert home.run_shown(command, "--name", "walk home").wait(timeout=60) == 0
        home.bridge = home.run_shown(
            "ichimai-bridge run", "--reader", reader.name, "--keyboard", "none"
        )
        attached = stack.harness.attach(card, reader)
        home.wait_screen("pin")  # the reader is this browser's: the kiosk flow asks the PIN

        shop_url = set_up["shop_url"]
        page.goto(f"{shop_url}/")
        with page.expect_navigation():
            page.click("#buy")
        page.wait_for_selector("#checkout-begin", timeout=WAIT_MS)
        assert "ひとめぐり物産ネット" in page.inner_text("#checkout-shop")
        page.click("#checkout-begin")
        page.wait_for_function("() => window.checkout?.screen === 'pin'", timeout=WAIT_MS)
        for digit in DEMO_PIN:
            page.click(f'button[data-digit="{digit}"]')
        page.click('button[data-pin="ok"]')
        page.wait_for_function("() => window.checkout?.screen === 'confirm'", timeout=WAIT_MS)
        walk.shot(page, "checkout-confirm-ja")
        page.click("#checkout-pay")
        page.wait_for_url(f"{shop_url}/return?*", timeout=WAIT_MS)
        assert page.locator("#result").get_attribute("data-status") == "paid"
        walk.check("online purchase")
        page.click("#order-link")
        page.fill("#refund-amount", "120")
        with page.expect_navigation():
            page.click("#refund")
        assert "Refunded 120 points (180 still refundable)" in page.inner_text("#refund-result")
        walk.check("partial refund")
    finally:
        if attached is not None:
            attached.remove()
        home.stop()
        context.close()


def _give(kiosk: KioskDriver, cause: str, points: int) -> None:
    """From the points screen: give `points` to `cause`, back on the points screen."""
    page = kiosk.page
    page.click('[data-screen="points"] button[data-action="give"]')
    kiosk.wait_screen("give")
    page.get_by_label(re.compile(re.escape(cause))).check()
    page.fill("#give-points", str(points))
    page.click('#give-form button[type="submit"]')
    kiosk.wait_screen("give-confirm")
    page.click("#give-confirm")
    kiosk.wait_screen("give-receipt")
    assert page.locator("#receipt-cause").inner_text() == cause
    assert page.locator("#receipt-points").inner_text() == str(points)
    page.click('[data-screen="give-receipt"] button[data-action="points"]')
    kiosk.wait_screen("points")


def _statement(kiosk: KioskDriver) -> list[tuple[str, str]]:
    """(kind, text) of each line of the town's statement on the points screen."""
    lines = kiosk.page.locator(
        f"xpath=//h2[normalize-space()='{TOWN}']/following-sibling::ul[@class='statement'][1]/li"
    )
    return [(li.get_attribute("data-kind") or "", li.inner_text()) for li in lines.all()]


def _balance(kiosk: KioskDriver) -> int:
    text = kiosk.page.locator(
        f"xpath=//h2[normalize-space()='{TOWN}']/following-sibling::p[1]"
    ).inner_text()
    return int(re.sub(r"\D", "", text.split(":")[-1]))


def _open_points(kiosk: KioskDriver, card: Path) -> None:
    from tests.e2e.test_kiosk_e2e import sign_in_with

    sign_in_with(kiosk, card)
    kiosk.wait_screen("mykey")
    kiosk.page.click('[data-screen="mykey"] button[data-goto="links"]')
    kiosk.wait_screen("links")
    kiosk.page.click('[data-screen="links"] button[data-action="points"]')
    kiosk.wait_screen("points")


def test_a_municipality_runs_every_kind_of_points_end_to_end(
    walk: Walk, kiosk: KioskDriver, browser: Any, tmp_path: Path
) -> None:
    stack = walk.stack
    card = kiosk.card()  # a new citizen: a freshly issued card
    set_up = _set_up(walk)

    # The citizen's MyKey ID, made at the kiosk with the card.
    _open_points(kiosk, card)
    mykey_id = kiosk.page.locator("#mykey-id").inner_text().replace("-", "").strip()
    assert kiosk.page.locator("#no-points").is_visible()
    kiosk.page.click('[data-screen="points"] button[data-action="end"]')
    kiosk.wait_screen("start")
    kiosk.remove()

    _grant(walk, mykey_id)  # +1000
    _convert(walk, set_up["key"], mykey_id)  # +500 +50 bonus
    _pay_at_the_till(walk, browser, tmp_path, set_up, card)  # -300

    causes = set_up["causes"]
    _open_points(kiosk, card)
    assert _balance(kiosk) == 1250
    _give(kiosk, causes["relief"], 50)
    walk.check("donation")
    _give(kiosk, causes["library"], 100)  # the goal: met
    walk.check("pledge (goal met)")
    _give(kiosk, causes["bench"], 200)  # far from its goal
    walk.check("pledge (goal missed)")
    assert _balance(kiosk) == 900
    kiosk.page.click('[data-screen="points"] button[data-action="end"]')
    kiosk.wait_screen("start")
    kiosk.remove()

    # The projects end; the daily job settles them (as of the day after their last).
    assert stack.app is not None
    after = (datetime.now(UTC) + timedelta(days=32)).isoformat()
    settled = stack.app.test_cli_runner().invoke(args=["points", "settle-projects", "--now", after])
    assert settled.exit_code == 0, settled.output
    assert re.search(r"LIBRARY: met, raised 100", settled.output) and re.search(
        r"BENCH: missed_returned, raised 200, returned 200", settled.output
    ), settled.output
    walk.check("projects settled")

    try:
        _buy_online(walk, browser, tmp_path, set_up, card)  # -300 +120
    finally:
        set_up["shop_server"].shutdown()
        set_up["shop_server"].server_close()

    _open_points(kiosk, card)
    assert _balance(kiosk) == 920
    lines = _statement(kiosk)
    kinds = [kind for kind, _ in lines]
    for kind in (
        "grant", "conversion", "conversion_bonus", "spend", "donation", "donation_return",
        "refund",
    ):  # fmt: skip
        assert kind in kinds, (kind, lines)
    text = "\n".join(line for _, line in lines)
    names = ("健康ポイント", "ひとめぐりカード", "ひとめぐり商店", "ひとめぐり物産ネット")
    for name in (*names, *causes.values()):
        assert name in text, (name, text)
    assert kinds.count("donation") == 3
    assert kinds.count("spend") == 2 and kinds.count("refund") == 1
    kiosk.check("statement")
    walk.check("statement read")
