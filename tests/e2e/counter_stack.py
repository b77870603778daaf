"""The counter's end-to-end stack: platform -> bridge (PC/SC mode) -> pcscd -> virtual card,
and Debian's Chromium on the librarian's tab.

The platform is a LivePlatform in this process (werkzeug, WebSockets, bus, SQLite) trusting
a demo J-LIS of the test's own; the bridge is a real BridgeClient in a thread watching one
vpcd reader of the session's pcscd through pyscard (the same code as `python -m bridge
run`); cards are inserted with `python -m bridge.vcard attach` into that reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.keyboard import KeyboardOutput
from bridge.readers import PcscReaders
from bridge.vcard.pcscd_harness import AttachedCard, Pcscd, VirtualReader
from tests.fixtures.counter import STAFF_LOGIN, STAFF_PASSWORD, CardMade, Counter
from tests.fixtures.privacy import scan
from webapp import db
from webapp.terminals.testing import BridgeThread

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots" / "counter"
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip on a workstation; fail under CI, where everything must be installed."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI runs the counter end to end)", pytrace=False)
    pytest.skip(reason)


@dataclass
class CounterStack:
    """A counter with a PC/SC bridge, one vpcd reader, and a way to put cards on it."""

    counter: Counter
    pcscd: Pcscd
    reader: VirtualReader
    keyboard: KeyboardOutput | None
    attached: AttachedCard | None = None

    @property
    def url(self) -> str:
        """The platform's base URL."""
        return self.counter.platform.url

    def start_bridge(self) -> BridgeThread:
        """Start (or restart) the bridge on the stack's reader, in PC/SC mode."""
        self.counter.stop()
        watcher = PcscReaders(only=self.reader.name)
        bridge = BridgeThread(
            self.counter.identity,
            watcher,
            keyboard=self.keyboard,
            backoff_base=0.05,
            backoff_cap=0.2,
        ).start()
        self.counter.bridge = bridge
        self.counter.platform.wait_ready(self.counter.terminal_id)
        return bridge

    def insert(self, card: CardMade) -> AttachedCard:
        """Put the card on the reader (vpcd); returns once pcscd sees it."""
        self.remove()
        self.attached = self.pcscd.attach(card.path, self.reader)
        return self.attached

    def remove(self) -> None:
        """Take the card off the reader."""
        if self.attached is not None:
            self.attached.remove()
            self.attached = None

    def open_counter(self, page: Any, lang: str = "en") -> None:
        """Sign in as the librarian and open the counter terminal in `page`."""
        page.goto(f"{self.url}/staff/login?lang={lang}")
        page.fill("#login", STAFF_LOGIN)
        page.fill("#password", STAFF_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{self.url}/counter/")
        page.click(f"form[action$='/open/{self.counter.terminal_id}'] button")
        page.wait_for_selector("#reader-state[data-online='true']", timeout=10_000)


def shoot(page: Any, name: str) -> Path:
    """A full-page screenshot as an artifact (artifacts/screenshots/counter/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context and page (1280x900) of conftest's session-wide Chromium.

    One Playwright (sync API) per thread at a time: the e2e suite shares conftest's.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def make_stack(
    counter_factory: Callable[[KeyboardOutput | None], Iterator[Counter]],
    pcscd: Pcscd,
    keyboard: KeyboardOutput | None,
) -> Iterator[CounterStack]:
    """Counter + PC/SC bridge on the session pcscd's second vpcd reader.

    The kiosk's session-wide demo stack (conftest.py) serves the first and the last reader.
    """
    for counter in counter_factory(keyboard):
        stack = CounterStack(counter, pcscd, pcscd.readers[1], keyboard)
        stack.start_bridge()
        try:
            yield stack
            # After every flow: no raw certificate, serial or My Number at rest.
            with counter.platform.app.app_context():
                found = scan(db.engine(), [card.issued for card in counter.cards])
            assert found == [], f"card identifiers at rest after the e2e flow: {found}"
        finally:
            stack.remove()
            counter.stop()
