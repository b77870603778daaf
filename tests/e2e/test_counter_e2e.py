"""The counter end to end: Chromium tab -> platform -> bridge (PC/SC) -> pcscd -> virtual card.

Each state is screenshotted to artifacts/screenshots/counter/. The barcode is decoded back
by zbarimg from the tab's own pixels; keyboard output is read back from a real X11 window
under Xvfb. Under CI (CI=true) nothing here may skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.keyboard import XdotoolKeyboard
from bridge.vcard.jlis import DemoJLIS
from bridge.vcard.pcscd_harness import Pcscd
from tests.e2e.conftest import AXE_TAGS, inject_axe
from tests.e2e.counter_stack import CounterStack, make_stack, need, page, shoot
from tests.fixtures.counter import PIN, make_counter
from tests.support.x11 import LibrarySystemWindow, xvfb

__all__ = ["page"]
pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(
    private_jlis: DemoJLIS, pcscd: Pcscd, tmp_path: Path, deployment: str
) -> Iterator[CounterStack]:
    yield from make_stack(
        lambda kb: make_counter(private_jlis, tmp_path, kb, deployment), pcscd, None
    )


def zbar(png: Path) -> str:
    """What zbarimg reads in a PNG (the barcode as a scanner would transmit it)."""
    done = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True)
    return done.stdout.strip()


def wait_state(page: Any, state: str, timeout: float = 15_000) -> None:
    page.wait_for_selector(f"#counter[data-state='{state}']", timeout=timeout)


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.2 AA violations on the page as it is now."""
    inject_axe(page)
    return list(
        page.evaluate(
            "async (tags) => (await axe.run(document, {runOnly: tags})).violations"
            ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))",
            AXE_TAGS,
        )
    )


def enter_pin(page: Any, pin: str = PIN) -> None:
    page.wait_for_selector("#pin:not([hidden])")
    for digit in pin:
        page.click(f"#pin [data-digit='{digit}']")
    page.click("#pin [data-pin='ok']")


def test_mode_a_number_large_and_axe_clean(stack: CounterStack, page: Any) -> None:
    card = stack.counter.card("alice")
    stack.counter.register(card, "20240001")
    stack.open_counter(page)
    shoot(page, "00-waiting")
    stack.insert(card)
    wait_state(page, "result:A")
    assert page.text_content("#result-number") == "20240001"
    assert page.is_hidden("#offer-link") and page.is_hidden("#pin")
    shoot(page, "01-mode-a")
    assert axe_violations(page) == []
    stack.remove()
    wait_state(page, "removed_after_result")
    assert page.text_content("#result-number") == "20240001"


def test_mode_b_barcode_decodes_to_the_number(
    stack: CounterStack, page: Any, tmp_path: Path
) -> None:
    need(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    stack.counter.configure(
        mode="B", symbology="nw7", nw7_start="A", nw7_stop="A", barcode_check="mod16"
    )
    card = stack.counter.card("bob")
    stack.counter.register(card, "1234567890")
    stack.open_counter(page)
    stack.insert(card)
    wait_state(page, "result:B")
    shoot(page, "02-mode-b")
    png = tmp_path / "barcode.png"
    assert page.is_hidden("#result-digits")
    page.locator("#result-barcode svg").screenshot(path=str(png))
    assert zbar(png) == "A12345678903A"
    for symbology, expected in (("code39", "12345678902"), ("code128", "1234567890")):
        stack.counter.configure(mode="B", symbology=symbology, code39_check=True)
        stack.remove()
        page.click("#clear-result")
        stack.insert(card)
        wait_state(page, "result:B")
        page.locator("#result-barcode svg").screenshot(path=str(png))
        assert zbar(png) == expected, symbology
    shoot(page, "02-mode-b-code128")


def test_pin_mode_and_refusals(stack: CounterStack, page: Any) -> None:
    stack.counter.configure(mode="A", pin_required=True)
    card = stack.counter.card("carol")
    stack.counter.register(card, "20240003")
    stack.open_counter(page)
    stack.insert(card)
    page.wait_for_selector("#pin:not([hidden])", timeout=15_000)
    shoot(page, "03-pin-pad")
    assert axe_violations(page) == []
    enter_pin(page)
    wait_state(page, "result:A")
    assert page.text_content("#result-number") == "20240003"
    stranger = stack.counter.card("stranger")
    stack.counter.configure(mode="A", pin_required=False)
    stack.insert(stranger)
    wait_state(page, "error:not_registered")
    shoot(page, "04-not-registered")


def test_no_link_then_staff_assisted_linking(stack: CounterStack, page: Any) -> None:
    card = stack.counter.card("dave")
    stack.counter.register(card)
    stack.open_counter(page, lang="ja")  # the default language
    stack.insert(card)
    wait_state(page, "error:no_link")
    shoot(page, "05-no-link")
    page.click("#start-link")
    page.fill("#link-number", "2024 0009")
    page.check("#link-terms")
    shoot(page, "06-link-form")
    assert axe_violations(page) == []
    page.click("#link-form button[type=submit]")
    enter_pin(page)
    wait_state(page, "result:A")
    assert page.text_content("#result-number") == "20240009"
    shoot(page, "07-linked")


def test_expired_revoked_removed_and_offline(stack: CounterStack, page: Any) -> None:
    lost = stack.counter.card("lost")
    stack.counter.jlis.revoke(lost.issued.auth_cert_der)
    past = datetime.now(UTC) - timedelta(days=400)
    old = stack.counter.card("old", not_before=past, not_after=past + timedelta(days=30))
    stack.open_counter(page)
    stack.insert(old)
    wait_state(page, "error:expired")
    shoot(page, "08-expired")
    stack.insert(lost)
    wait_state(page, "error:revoked")
    shoot(page, "09-revoked")
    assert axe_violations(page) == []
    stack.counter.configure(mode="A", pin_required=True)
    fine = stack.counter.card("fine")
    stack.counter.register(fine, "20240010")
    stack.insert(fine)
    page.wait_for_selector("#pin:not([hidden])", timeout=15_000)
    stack.remove()
    wait_state(page, "error:card_removed")
    shoot(page, "10-card-removed")
    stack.counter.stop()
    wait_state(page, "error:bridge_offline")
    assert page.get_attribute("#reader-state", "data-online") == "false"
    # Paired, only not connected: it does come back by itself (and does, below).
    assert "notices by itself" in page.locator("#status").inner_text()
    shoot(page, "11-bridge-offline")
    stack.start_bridge()
    wait_state(page, "waiting")
    assert page.get_attribute("#reader-state", "data-online") == "true"


def test_a_revoked_bridge_says_to_ask_the_administrator(stack: CounterStack, page: Any) -> None:
    """Revoked, the bridge never comes back by itself: the tab says who can pair it."""
    stack.open_counter(page)
    status, _ = stack.counter.platform.admin(
        "POST", f"/api/v1/admin/bridges/{stack.counter.identity.bridge_id}/revoke"
    )
    assert status == 200
    wait_state(page, "error:bridge_unpaired")
    assert page.locator("#reader-state").inner_text() == "No card reader paired"
    said = page.locator("#status").inner_text()
    assert "Ask your administrator" in said and "pair the bridge again" in said
    assert "by itself" in said and "notices by itself" not in said  # it cannot, it says
    shoot(page, "12-bridge-revoked")
    assert axe_violations(page) == []
    page.goto(f"{stack.url}/counter/?lang=ja")  # reopened later: still the truth
    wait_state(page, "error:bridge_unpaired")
    assert "ペアリング" in page.locator("#status").inner_text()
    shoot(page, "12-bridge-revoked-ja")


def test_a_status_reply_older_than_the_offline_event_is_dropped(
    stack: CounterStack, page: Any
) -> None:
    """A poll answered while the bridge was online, arriving after its offline push.

    The reply is held in the browser until the push has been shown, then delivered: the
    tab keeps saying offline (it once flipped back to online and "waiting").
    """
    stack.open_counter(page)
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/terminal/status", hold)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not held and datetime.now(UTC) < deadline:
        page.wait_for_timeout(100)
    assert held, "no status poll within 10 s"
    stack.counter.stop()
    wait_state(page, "error:bridge_offline")
    answered = page.evaluate("() => window.counter.polls")
    held[0].fulfill(
        json={"terminal_id": stack.counter.terminal_id, "bridge_online": True, "card": None}
    )
    page.wait_for_function(f"() => window.counter.polls > {answered}", timeout=5_000)
    assert page.get_attribute("#reader-state", "data-online") == "false"
    assert page.get_attribute("#counter", "data-state") == "error:bridge_offline"
    page.unroute("**/terminal/status")


def test_mode_c_types_into_the_library_system(
    private_jlis: DemoJLIS, pcscd: Pcscd, tmp_path: Path, page: Any, deployment: str
) -> None:
    need(shutil.which("Xvfb") is not None, "Xvfb is not installed (apt: xvfb)")
    need(shutil.which("xdotool") is not None, "xdotool is not installed")
    with xvfb() as display:
        keyboard = XdotoolKeyboard({"PATH": "/usr/bin:/bin", "DISPLAY": display})
        need(keyboard.problem() is None, f"xdotool: {keyboard.problem()}")
        window = LibrarySystemWindow(display, tmp_path)
        try:
            stacks = make_stack(
                lambda kb: make_counter(private_jlis, tmp_path, kb, deployment), pcscd, keyboard
            )
            stack = next(stacks)
            try:
                stack.counter.configure(mode="C", keyboard_suffix="enter")
                card = stack.counter.card("erin")
                stack.counter.register(card, "20240011")
                # Frank linked his number himself: a claim, never typed until verified.
                frank = stack.counter.card("frank")
                stack.counter.register(frank, "20240012", verification="unverified")
                stack.open_counter(page)
                stack.insert(frank)
                wait_state(page, "result:A")
                assert page.text_content("#result-number") == "20240012"
                assert page.is_visible("#result-unverified") and page.is_visible("#verify-link")
                shoot(page, "13-unverified-claim")
                assert axe_violations(page) == []
                stack.insert(card)
                wait_state(page, "result:C")
                # The first thing ever typed is Erin's number: Frank's claim was not typed.
                assert window.wait_for("ENTER:") == "ENTER:20240011"
                assert "20240011" in page.text_content("#result-typed")
                assert page.is_hidden("#verify-link")
                shoot(page, "12-mode-c")
                # Staff compare Frank's library card with the number; his PIN confirms it.
                stack.insert(frank)
                wait_state(page, "result:A")
                page.click("#verify-link")
                enter_pin(page)
                wait_state(page, "result:C")
                # The window's field keeps what was typed: Erin's number, then Frank's.
                assert window.wait_for("ENTER:") == "ENTER:2024001120240012"
                assert page.is_hidden("#result-unverified")
                shoot(page, "14-verified-by-staff-typed")
            except BaseException:
                stacks.close()
                raise
            next(stacks, None)  # the privacy scan, then the stack's teardown
        finally:
            window.close()
