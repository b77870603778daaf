"""webapp/barcodes.py: every symbology drawn in Chromium and decoded back by zbarimg.

The SVG is shown in Debian's Chromium (what a counter PC's browser does with it), the
screenshot goes to a real decoder (zbar), and what it reads must be exactly what the
library's scanner would transmit: for NW-7 the start, the data, our check character
and the stop. Under CI (CI=true) nothing here may skip.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webapp.barcodes import QUIET_MODULES, render
from webapp.providers.numbers import compute_check

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip on a workstation, fail under CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI must decode barcodes)", pytrace=False)
    pytest.skip(reason)


class Renderer:
    """Chromium in a thread of its own, drawing SVGs to PNG files on request.

    Playwright's sync API allows one instance per thread, and the e2e suite may hold one
    in the main thread for the whole session: this one lives in its own thread.
    """

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self.answers: queue.Queue[BaseException | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True, name="barcode-chromium")
        self.thread.start()

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            while (job := self.requests.get()) is not None:
                svg, path = job
                try:
                    html = f"<!doctype html><body style='margin:0;background:#fff'>{svg}</body>"
                    page.set_content(html)
                    page.locator("svg").screenshot(path=str(path))
                    self.answers.put(None)
                except BaseException as exc:  # handed to the test thread
                    self.answers.put(exc)
            browser.close()

    def png(self, svg: str, path: Path) -> None:
        """Draw `svg` in Chromium and save the screenshot as `path`."""
        self.requests.put((svg, path))
        error = self.answers.get(timeout=60)
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop the browser thread."""
        self.requests.put(None)
        self.thread.join(30)


@pytest.fixture(scope="module")
def page() -> Iterator[Renderer]:
    need(Path(CHROMIUM).exists(), "Debian's chromium is not installed")
    need(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    renderer = Renderer()
    yield renderer
    renderer.close()


def decode(page: Renderer, svg: str, path: Path) -> str:
    """Show the SVG in Chromium, screenshot it, and read it back with zbarimg --raw."""
    page.png(svg, path)
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"zbarimg read nothing ({done.returncode}): {done.stderr}"
    return done.stdout.strip()


NW7_CASES = [
    ("1234567890", "A", "A", "none", "", "A1234567890A"),
    ("1234567890", "A", "A", "mod16", "", "A12345678903A"),
    ("1234567890", "C", "C", "mod16", "", "C1234567890+C"),
    ("0000123", "A", "A", "mod16", "", "A0000123-A"),
    ("1234567890", "B", "D", "7dr", "", "B12345678903D"),
    ("1234567890", "A", "A", "7dsr", "zero", "A12345678904A"),
    ("1234567890", "A", "A", "9dsr", "raw", "A12345678909A"),
    ("1234567890", "A", "B", "mod10_w21_split", "", "A12345678903B"),
    ("1234567890", "A", "A", "mod10_w21_whole", "", "A12345678905A"),
    ("1234567890", "D", "D", "mod10_w31", "", "D12345678905D"),
    ("0000014", "A", "A", "mod11_w27", "b", "A00000141A"),
    ("12-34.56", "A", "A", "mod16", "", None),
]


@pytest.mark.parametrize(("number", "start", "stop", "check", "variant", "expected"), NW7_CASES)
def test_nw7_decodes_with_start_stop_and_our_check(
    page: Any,
    tmp_path: Path,
    number: str,
    start: str,
    stop: str,
    check: str,
    variant: str,
    expected: str | None,
) -> None:
    settings = {
        "symbology": "nw7",
        "nw7_start": start,
        "nw7_stop": stop,
        "barcode_check": check,
        "barcode_check_variant": variant,
    }
    barcode = render(number, settings)
    if expected is None:
        expected = start + number + compute_check(number, check, start=start, stop=stop) + stop
    assert barcode.encoded == expected
    assert decode(page, barcode.svg, tmp_path / "nw7.png") == expected


@pytest.mark.parametrize(
    ("number", "check", "expected"),
    [
        ("1234567890", False, "1234567890"),
        ("1234567890", True, "12345678902"),
        ("AB-12.34", False, "AB-12.34"),
    ],
)
def test_code39_decodes_with_optional_mod43(
    page: Any, tmp_path: Path, number: str, check: bool, expected: str
) -> None:
    barcode = render(number, {"symbology": "code39", "code39_check": check})
    assert barcode.encoded == expected
    assert barcode.caption == f"*{expected}*"
    assert decode(page, barcode.svg, tmp_path / "c39.png") == expected


@pytest.mark.parametrize("number", ["1234567890", "2024000123456", "A-1234"])
def test_code128_decodes(page: Any, tmp_path: Path, number: str) -> None:
    barcode = render(number, {"symbology": "code128"})
    assert decode(page, barcode.svg, tmp_path / "c128.png") == number


def test_svg_is_crisp_with_a_white_quiet_zone_and_a_caption() -> None:
    barcode = render("1234567890", {"symbology": "nw7", "barcode_check": "mod16"})
    svg = barcode.svg
    assert 'shape-rendering="crispEdges"' in svg
    assert 'role="img"' in svg and 'aria-label="Barcode A12345678903A"' in svg
    assert ">A12345678903A</text>" in svg
    xs = [int(x) for x in re.findall(r'<rect x="(\d+)"', svg)]
    widths = [int(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="(\d+)"', svg)]
    assert min(xs) == QUIET_MODULES  # the first bar starts after the quiet zone
    view_width = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))  # type: ignore[union-attr]
    assert max(x + w for x, w in zip(xs, widths, strict=True)) == view_width - QUIET_MODULES
    assert barcode.width_px % view_width == 0  # whole pixels per module


def test_refuses_what_a_symbology_cannot_hold() -> None:
    with pytest.raises(ValueError):
        render("12AB", {"symbology": "nw7"})
    with pytest.raises(ValueError):
        render("1234", {"symbology": "qr"})
    with pytest.raises(ValueError):
        render("abc~", {"symbology": "code39"})
