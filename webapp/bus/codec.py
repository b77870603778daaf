"""JSON encoding of bus messages, with the size limit every bus enforces."""

from __future__ import annotations

import json
from typing import Any

from .interfaces import BadMessage, Message

# The largest batch answer a bridge sends (a certificate read: 8 x 256 bytes, hex in
# JSON) is ~5 KB; 64 KiB leaves room and still bounds what one message can cost.
DEFAULT_MAX_BYTES = 64 * 1024


def encode(message: Any, max_bytes: int) -> bytes:
    """A message as compact UTF-8 JSON; BadMessage if not a JSON object or too large."""
    if not isinstance(message, dict):
        raise BadMessage("a bus message must be a dict")
    try:
        raw = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise BadMessage(f"not JSON-serialisable: {exc}") from None
    if len(raw) > max_bytes:
        raise BadMessage(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    return raw


def decode(raw: bytes, max_bytes: int) -> Message:
    """The message in `raw`; BadMessage if too large or not a JSON object."""
    if len(raw) > max_bytes:
        raise BadMessage(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    try:
        message = json.loads(raw)
    except ValueError:
        raise BadMessage("not JSON") from None
    if not isinstance(message, dict):
        raise BadMessage("a bus message must be a JSON object")
    return message
