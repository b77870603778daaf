"""At home in Debian's Chromium: /home makes the browser's own terminal, the citizen runs
the bridge commands shown (`ichimai-bridge pair` and `ichimai-bridge run`, as real
`python -m bridge` processes of this checkout, the demo's registered card on the bridge's
virtual reader), and the page becomes the kiosk flow: PIN, MyKey ID, links, My points, sign out.

Every page state checked is screenshotted (artifacts/screenshots/home/) and run through
axe-core (no serious or critical violations).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webapp.demo import DEMO_PIN, DemoStack

from .conftest import ROOT, shoot_and_audit

pytestmark = pytest.mark.e2e

SHOTS = ROOT / "artifacts" / "screenshots" / "home"
WAIT_MS = 30_000


class HomeBrowser:
    """The citizen's browser tab at /home and the bridge processes they start."""

    def __init__(self, page: Any, url: str, tmp: Path) -> None:
        self.page, self.url, self.tmp = page, url, tmp
        self.shots = 0
        self.bridge: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
            "DISPLAY": "",
            "ICHIMAI_BRIDGE_HOME": str(tmp / "bridge-home"),
        }

    def check(self, state: str) -> None:
        """Screenshot this page state and assert axe finds nothing serious or critical."""
        self.shots += 1
        self.page.wait_for_timeout(150)  # let focus and live regions settle
        shoot_and_audit(self.page, SHOTS / f"{self.shots:02d}-{state}.png", state)

    def wait_screen(self, screen: str) -> None:
        """Wait until the kiosk flow shows `screen`."""
        self.page.wait_for_function(
            f"() => document.getElementById('kiosk')?.dataset.current === {screen!r}",
            timeout=WAIT_MS,
        )

    def run_shown(self, command: str, *extra: str) -> subprocess.Popen[bytes]:
        """Run a command exactly as the page shows it (`ichimai-bridge` = this checkout's
        `python -m bridge`; tests/functional/test_bridge_wheel.py runs the installed one)."""
        argv = command.split()
        assert argv[0] == "ichimai-bridge", command
        argv = ["python", "-m", "bridge", *argv[1:]]
        with (self.tmp / "bridge.log").open("ab") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [sys.executable, *argv[1:], *extra], env=self.env, cwd=ROOT, stdout=log, stderr=log
            )

    def stop(self) -> None:
        if self.bridge is not None and self.bridge.poll() is None:
            self.bridge.send_signal(signal.SIGTERM)
            try:
                self.bridge.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.bridge.kill()
                self.bridge.wait()


@pytest.fixture
def home(stack: DemoStack, browser: Any, tmp_path: Path) -> Iterator[HomeBrowser]:
    context = browser.new_context(viewport={"width": 1024, "height": 1366}, locale="ja-JP")
    driver = HomeBrowser(context.new_page(), stack.url, tmp_path)
    yield driver
    driver.stop()
    context.close()


def test_at_home_pair_the_bridge_then_pin_mykey_links_and_my_points(
    home: HomeBrowser, stack: DemoStack
) -> None:
    page = home.page
    page.goto(f"{home.url}/home/?lang=en")
    assert page.get_by_role("button", name="Use my card reader").is_visible()
    home.check("start-en")
    page.goto(f"{home.url}/home/?lang=ja")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "自宅でマイナンバーカードを使う" in page.locator("h1").inner_text()
    home.check("start")

    page.get_by_role("button", name="自分のカードリーダーを使う").click()
    page.wait_for_selector("#pairing-code", timeout=WAIT_MS)
    home.check("pairing")
    pair_command = page.locator("#pair-command").inner_text().strip()
    code = page.locator("#pairing-code").inner_text().strip()
    assert pair_command == f"ichimai-bridge pair {stack.app.config['PLATFORM_ORIGIN']} {code}"
    paired = home.run_shown(pair_command, "--name", "home e2e")
    assert paired.wait(timeout=60) == 0

    card = home.tmp / "registered.json"
    shutil.copy(stack.cards["registered"].path, card)
    home.bridge = home.run_shown("ichimai-bridge run", "--sim", str(card), "--keyboard", "none")
    # home.js sees the pairing and reloads; kiosk.js sees the card and asks for the PIN.
    home.wait_screen("pin")
    assert page.locator('[data-mode="home"]').count() == 1
    home.check("pin")
    for digit in DEMO_PIN:
        page.click(f'button[data-digit="{digit}"]')
    page.click('button[data-pin="ok"]')
    home.wait_screen("mykey")
    assert page.locator('[data-when="opened"]').is_visible()
    assert page.locator("#mykey-id").inner_text().replace("-", "") == stack.registered_mykey
    home.check("mykey")
    page.click('[data-screen="mykey"] button[data-goto="links"]')
    home.wait_screen("links")
    assert page.locator("#link-list li").count() >= 1
    home.check("links")
    page.click('[data-screen="links"] button[data-action="points"]')
    home.wait_screen("points")
    page.wait_for_function(
        "() => document.getElementById('points-list').textContent.includes('500')"
    )
    assert "いちまい市" in page.locator("#points-list").inner_text()
    home.check("points")

    sign_out = page.locator('[data-screen="points"] button[data-action="end"]')
    assert sign_out.inner_text().strip() == "サインアウト"
    sign_out.click()
    home.wait_screen("start")
    page.wait_for_timeout(500)  # the same card on the reader does not start again by itself
    assert page.evaluate("document.getElementById('kiosk').dataset.current") == "start"
    home.check("signed-out")
    # The reader stays this browser's: a reload still shows the flow, not the set-up.
    page.reload()
    page.wait_for_selector('#kiosk[data-mode="home"]', timeout=WAIT_MS)
