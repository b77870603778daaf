"""What a client may send: sizes, JSON depth, text lengths and characters (pure rules).

No Flask, no I/O: the web layer (`webapp/inputs/web.py`) applies these to every request,
form and JSON body; a domain service may call them too. Every bound, and why it is what
it is:

- `MAX_CONTENT_LENGTH` (1 MiB): any request body. The largest legitimate one outside an
  upload is a provider's form with both terms of use at their limit, about 360 KB once
  UTF-8 and percent-encoding are counted; 1 MiB bounds what one request makes a worker
  buffer. Endpoints that take a file allow more (`UPLOAD_CONTENT_LENGTH`).
- `UPLOAD_CONTENT_LENGTH` (2 MiB + 64 KiB): a grant CSV (`points.grant_csv.MAX_BYTES`,
  2 MiB) and the multipart envelope around it.
- `MAX_JSON_BYTES` (64 KiB): any JSON body or WebSocket frame the platform parses. A
  sealed PIN, a pairing request or a partner's conversion is under 2 KB.
- `MAX_JSON_DEPTH` (32): our JSON is at most 4 levels deep. Python's parser recurses
  once per level: 50,000 levels raised RecursionError (a 500) before this bound.
- `NAME_LENGTH` (200): a provider's, terminal's or program's name.
- `TERMS_LENGTH` (20,000 characters): a terms of use in one language. Real ones are a
  few thousand characters; the terms travel in every kiosk answer about the provider,
  so 5 MB (once accepted) cost every kiosk 5 MB per screen.
- `LOGIN_LENGTH` (64), passwords `webapp.staff.services.MAX_PASSWORD_LENGTH`.

Characters: no text a client sends may hold a control character (C0 but TAB, LF and CR
in multi-line text; DEL; C1) or a lone surrogate. PostgreSQL refuses NUL in a text
column (an error, once a 500), a lone surrogate cannot be encoded to UTF-8, and the
others are invisible in a page, so they only ever serve to fool a reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_CONTENT_LENGTH = 1024 * 1024
UPLOAD_CONTENT_LENGTH = 2 * 1024 * 1024 + 64 * 1024
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
NAME_LENGTH = 200
TERMS_LENGTH = 20_000
LOGIN_LENGTH = 64

# Refused everywhere: C0 but TAB/LF/CR, DEL, C1, lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Refused in a single-line field: TAB, LF and CR too.
_CONTROL_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# A JSON string token (possessive: linear on any input) or a bracket outside one.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')


class InputRefused(ValueError):
    """A client sent something out of bounds; `reason` says what, `field` where."""

    def __init__(self, reason: str, field: str = "", *, limit: int | None = None) -> None:
        super().__init__(f"{field or 'input'}: {reason}" + (f" (limit {limit})" if limit else ""))
        self.reason = reason  # too_large | too_deep | not_json | control_character | too_long
        self.field = field
        self.limit = limit


def control_character(value: str, *, multiline: bool = False) -> bool:
    """Whether `value` holds a character no input may hold (see the module docstring)."""
    pattern = _CONTROL if multiline else _CONTROL_SINGLE_LINE
    return pattern.search(value) is not None


def text_problem(value: str, *, max_length: int, multiline: bool = False) -> str | None:
    """Why `value` is refused as a text field (`too_long`, `control_character`), or None."""
    if len(value) > max_length:
        return "too_long"
    if control_character(value, multiline=multiline):
        return "control_character"
    return None


def check_text(value: str, field: str, *, max_length: int, multiline: bool = False) -> str:
    """`value` if it is acceptable text; InputRefused otherwise."""
    problem = text_problem(value, max_length=max_length, multiline=multiline)
    if problem is not None:
        raise InputRefused(problem, field, limit=max_length if problem == "too_long" else None)
    return value


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of `text` nest (brackets inside strings do not
    count); an approximation on malformed JSON, which the parser refuses anyway."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        found = match.group()
        if found in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif found in ("]", "}"):
            depth -= 1
    return deepest


def parse_json(
    raw: str | bytes,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    **loads: Any,
) -> Any:
    """Parse a JSON text within the size and depth bounds, with no string holding a
    control character; InputRefused (a ValueError) otherwise, never RecursionError."""
    if len(raw) > max_bytes:
        raise InputRefused("too_large", limit=max_bytes)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InputRefused("not_json") from None
    if json_depth(text) > max_depth:
        raise InputRefused("too_deep", limit=max_depth)
    try:
        value = json.loads(text, **loads)
    except (ValueError, RecursionError):
        raise InputRefused("not_json") from None
    if any(control_character(s, multiline=True) for s in _strings(value)):
        raise InputRefused("control_character")
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, keys included (bounded by MAX_JSON_DEPTH)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
