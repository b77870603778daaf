"""Barcodes for the counter's mode B: SVG a library's existing scanner reads off a screen.

python-barcode encodes (the bar/space pattern of NW-7, Code 39, Code 128); we draw the
SVG ourselves. Its SVGWriter lays bars out in millimetres at fractional positions, which
a browser anti-aliases into grey edges; a scanner reading a screen wants every bar on
whole CSS pixels. So the SVG's user unit is one module, the `width` is a whole number of
pixels per module, and `shape-rendering="crispEdges"` keeps edges sharp.

NW-7 (Codabar) has no check character of its own; python-barcode adds none. The text
comes from `providers.numbers.nw7_symbol` (start, data, the library's check character
just before the stop, stop). Code 39 may carry the mod-43 check; Code 128's mod-103 check
is part of the symbology and computed by the encoder.

Quiet zones: ISO/IEC 15417 (Code 128) and 16388 (Code 39) ask for 10 X; we leave 12
modules of NW-7/Code 39 (wide elements are 2.5-3 X) and 12 of Code 128 on each side,
white, inside the SVG, so the page's own background never eats into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from barcode.codabar import CODABAR
from barcode.codex import Code39, Code128
from barcode.errors import BarcodeError

from .providers.numbers import nw7_symbol

QUIET_MODULES = 12
BAR_HEIGHT_MODULES = 60
TEXT_GAP_MODULES = 6
# CSS pixels per module. NW-7 elements are 2 (narrow) and 5 (wide) modules in
# python-barcode, Code 39 1 and 3, Code 128 1-4: so the narrowest bar is 2 px everywhere
# (about 0.5 mm on a 96 dpi screen; screen scanners want 0.25 mm or more).
PIXELS_PER_MODULE = {"nw7": 1, "code39": 2, "code128": 2}
# Human-readable line: font size in modules (scaled with the symbol).
TEXT_SIZE_MODULES = {"nw7": 22, "code39": 11, "code128": 11}


@dataclass(frozen=True)
class RenderedBarcode:
    """A barcode ready for the page: what it encodes, its caption and its SVG markup."""

    symbology: str  # nw7 | code39 | code128
    encoded: str  # the characters in the symbol (NW-7: start, data, check, stop)
    caption: str  # the human-readable line under the bars
    svg: str
    width_px: int
    height_px: int


def _pattern(symbology: str, number: str, settings: Mapping[str, Any]) -> tuple[str, str]:
    """The encoded text and the module pattern ("1" bar, "0" space) for a symbology."""
    if symbology == "nw7":
        encoded = nw7_symbol(number, settings)
        return encoded, CODABAR(encoded).build()[0]
    if symbology == "code39":
        symbol = Code39(number, add_checksum=bool(settings.get("code39_check")))
        return symbol.get_fullcode(), symbol.build()[0]
    if symbology == "code128":
        symbol = Code128(number)
        return symbol.get_fullcode(), symbol.build()[0]
    raise ValueError(f"unknown symbology {symbology!r}")


def _runs(pattern: str) -> list[tuple[int, int]]:
    """(start, length) of every bar in a module pattern."""
    bars: list[tuple[int, int]] = []
    start = None
    for i, module in enumerate(pattern + "0"):
        if module == "1" and start is None:
            start = i
        elif module != "1" and start is not None:
            bars.append((start, i - start))
            start = None
    return bars


def render(number: str, settings: Mapping[str, Any], *, label: str = "") -> RenderedBarcode:
    """The SVG barcode of `number` under a provider's counter settings (symbology etc.).

    ValueError if the number cannot be encoded in the configured symbology.
    """
    symbology = str(settings.get("symbology") or "nw7").lower()
    try:
        encoded, pattern = _pattern(symbology, number, settings)
    except BarcodeError as exc:  # python-barcode's errors are not ValueErrors
        raise ValueError(str(exc)) from exc
    caption = f"*{encoded}*" if symbology == "code39" else encoded
    px = PIXELS_PER_MODULE[symbology]
    text_size = TEXT_SIZE_MODULES[symbology]
    width = len(pattern) + 2 * QUIET_MODULES
    bar_height = BAR_HEIGHT_MODULES * (2 if symbology == "nw7" else 1)
    top = QUIET_MODULES // 2
    text_y = top + bar_height + TEXT_GAP_MODULES + text_size
    height = text_y + TEXT_GAP_MODULES
    bars = "".join(
        f'<rect x="{QUIET_MODULES + x}" y="{top}" width="{w}" height="{bar_height}"/>'
        for x, w in _runs(pattern)
    )
    name = label or f"Barcode {encoded}"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label={quoteattr(name)}'
        f' class="barcode barcode-{symbology}" width="{width * px}" height="{height * px}"'
        f' viewBox="0 0 {width} {height}" shape-rendering="crispEdges"'
        f" data-encoded={quoteattr(encoded)}>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<g fill="#000">{bars}</g>'
        f'<text x="{width / 2:g}" y="{text_y}" text-anchor="middle" font-size="{text_size}"'
        ' font-family="ui-monospace, DejaVu Sans Mono, Menlo, Consolas, monospace"'
        f' fill="#000" aria-hidden="true">{escape(caption)}</text>'
        "</svg>"
    )
    return RenderedBarcode(symbology, encoded, caption, svg, width * px, height * px)
