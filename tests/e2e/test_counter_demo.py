"""The demo's virtual reader panel drives the counter too: tap a demo card on the
counter's reader from /demo/reader and the librarian's tab answers (demo stack of
conftest.py: `python -m bridge run` processes on the session's pcscd)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.counter_stack import shoot
from webapp.demo import LOGINS, DemoStack
from webapp.terminals.models import TerminalKind

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "via",
    ["readers", "panel"],
)
def test_demo_reader_taps_on_the_counter(stack: DemoStack, browser: Any, via: str) -> None:
    terminal = stack.terminals[TerminalKind.COUNTER]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    counter, panel = context.new_page(), context.new_page()
    try:
        counter.goto(f"{stack.url}/staff/login?lang=en")
        counter.fill("#login", "counter")
        counter.fill("#password", LOGINS["counter"][0])
        counter.click("button[type=submit]")
        counter.goto(f"{stack.url}/counter/")
        counter.click(f"form[action$='/open/{terminal}'] button")
        counter.wait_for_selector("#reader-state[data-online='true']", timeout=20_000)
        panel.goto(f"{stack.url}/demo/reader")

        def tap(card: str, state: str) -> None:
            if via == "panel":
                panel.click(f"form[action$='/reader/{terminal}/tap/{card}'] button")
            else:
                assert stack.readers is not None
                stack.readers.tap(terminal, card)
            try:
                counter.wait_for_selector(f"#counter[data-state='{state}']", timeout=20_000)
            except Exception:
                history = counter.evaluate("() => window.counter.history")
                raise AssertionError(f"counter states: {history}") from None

        def remove() -> None:
            panel.click(f"form[action$='/reader/{terminal}/remove'] button")

        tap("registered", "result:B")  # the demo library prints NW-7 barcodes
        assert counter.get_attribute("#result-barcode svg", "data-encoded").startswith("A")
        # The demo library system's word on the patron follows (SIP2, via the counter's
        # own bridge): no problem with this patron.
        counter.wait_for_selector("#result-patron.patron-ok", timeout=10_000)
        shoot(counter, f"20-demo-{via}-registered")
        remove()
        tap("new", "error:not_registered")
        shoot(counter, f"21-demo-{via}-new-card")
        remove()
        tap("revoked", "error:revoked")
        remove()
    finally:
        context.close()
