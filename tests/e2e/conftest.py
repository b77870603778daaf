"""End-to-end stack for the kiosk: Debian Chromium -> platform -> bridge -> pcscd -> virtual card.

One stack per session (`webapp.demo.DemoStack` on the session's own pcscd): the platform in
a thread, a counter and a kiosk terminal, each with a paired `python -m bridge run` process
serving only its own vpcd reader. Cards are tapped by inserting card files into the
kiosk's reader (a card process per tap). axe-core (npm, package.json) is injected into
every page state checked; screenshots go to artifacts/screenshots/kiosk/.

Under CI (CI=true) nothing here skips: a missing Chromium, pcscd or npm fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from webapp.demo import DEMO_PIN, LOGINS, DemoStack
from webapp.terminals.models import TerminalKind

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "artifacts" / "screenshots" / "kiosk"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"e2e prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def shoot_and_audit(page: Any, path: Path, state: str) -> None:
    """Screenshot `page` to `path` (full page) and assert axe-core finds nothing serious
    or critical in it (WCAG 2.2 AA tags)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    inject_axe(page)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"axe on {state}: {bad}"


def inject_axe(page: Any) -> None:
    """Load axe-core into `page` through the DevTools protocol: the pages' CSP refuses an
    inline <script> (Playwright's add_script_tag). Predicates given to wait_for_function
    are arrow functions for the same reason: a bare expression is compiled with eval."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(ensure_axe().read_text())


def ensure_axe() -> Path:
    """node_modules/axe-core, installed from package-lock.json with npm if missing."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed (apt-get install npm)")
        lock = (ROOT / "package-lock.json").exists()
        subprocess.run(
            [npm or "npm", "ci" if lock else "install", "--no-audit", "--no-fund"],
            cwd=ROOT,
            check=True,
        )
    return AXE


@pytest.fixture(scope="session")
def stack(
    pcscd: Any, tmp_path_factory: pytest.TempPathFactory, deployment: str
) -> Iterator[DemoStack]:
    """The demo stack on the session's pcscd (kiosk bridge on its own reader), served as
    the --deployment says (in this process, or by gunicorn on PostgreSQL and Redis)."""
    demo = DemoStack(
        tmp_path_factory.mktemp("e2e") / "demo",
        harness=pcscd,
        idle_seconds=60,
        deployment=deployment,
    )
    demo.start()
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright.

    Module scope: a running sync Playwright keeps an event loop on this thread, and other
    modules' Playwright fixtures (tests/unit/...) refuse to start inside it.
    """
    if not Path(CHROMIUM).exists():
        _unavailable("Debian's chromium is not installed")
    ensure_axe()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class KioskDriver:
    """A kiosk browser tab and the stack behind it, with the steps tests take."""

    stack: DemoStack
    page: Any
    name: str
    tmp: Path
    shots: list[Path] = field(default_factory=list)

    @property
    def kiosk_id(self) -> int:
        return self.stack.terminals[TerminalKind.KIOSK]

    def sign_in_and_open_kiosk(self) -> None:
        """What an admin does on the kiosk device: sign in, open the terminal as a kiosk."""
        self.page.goto(f"{self.stack.url}/staff/login")
        self.page.fill("#login", "admin")
        self.page.fill("#password", LOGINS["admin"][0])
        self.page.locator("form button[type=submit]").last.click()
        self.page.goto(f"{self.stack.url}/admin/terminals/")
        self.page.get_by_role("button", name=re.compile("キオスクとして開く|Open as kiosk")).click()
        self.page.wait_for_url("**/kiosk/")
        self.wait_screen("start")

    def card(self, name: str = "", *, tries: int | None = None, **issue: Any) -> Path:
        """A fresh card file: a demo card's copy (by name) or a newly issued card."""
        path = self.tmp / f"{name or 'issued'}-{len(list(self.tmp.glob('*.json')))}.json"
        if name:
            shutil.copy(self.stack.cards[name].path, path)
            if tries is not None:
                loaded = CardFile.load(path)
                loaded.data.auth_pin.tries_left = tries
                loaded.save()
            return path
        data = card_data_from_issued(
            self.stack.jlis.issue(**issue), pin=DEMO_PIN, sign_password="ABC123"
        )
        if tries is not None:
            data.auth_pin.tries_left = tries
        CardFile.create(path, data)
        return path

    def tap(self, card: Path) -> None:
        """Put a card on the kiosk's reader (a vpcd card process)."""
        assert self.stack.readers is not None
        self.stack.readers.tap(self.kiosk_id, card)

    def remove(self) -> None:
        """Take the card off the kiosk's reader."""
        assert self.stack.readers is not None
        self.stack.readers.remove(self.kiosk_id)

    def wait_screen(self, screen: str, timeout: float = 20_000) -> None:
        """Wait until the kiosk shows `screen`."""
        self.page.wait_for_function(
            f"() => document.getElementById('kiosk')?.dataset.current === {screen!r}",
            timeout=timeout,
        )

    def enter_pin(self, pin: str = DEMO_PIN) -> None:
        """Tap the digits on the on-screen pad, then OK."""
        for digit in pin:
            self.page.click(f'button[data-digit="{digit}"]')
        self.page.click('button[data-pin="ok"]')

    def check(self, state: str) -> None:
        """Screenshot this page state and assert axe finds nothing serious or critical."""
        path = SHOTS / f"{self.name}-{len(self.shots) + 1:02d}-{state}.png"
        self.page.wait_for_timeout(150)  # let focus and live regions settle
        shoot_and_audit(self.page, path, state)
        self.shots.append(path)


@pytest.fixture
def kiosk(
    stack: DemoStack, browser: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[KioskDriver]:
    """A fresh browser context opened as the stack's kiosk by an admin."""
    context = browser.new_context(viewport={"width": 1024, "height": 1366}, locale="ja-JP")
    page = context.new_page()
    name = request.node.name.removeprefix("test_")
    driver = KioskDriver(stack, page, name, tmp_path)
    driver.sign_in_and_open_kiosk()
    yield driver
    driver.remove()
    context.close()
