"""Input checks shared by the API, the CSV reader and the services (no I/O)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from .errors import Code, InvalidInput
from .models import MAX_POINTS, MYKEY_ID_MAX

# MyKey IDs are made by webapp.identity (8 characters today); the ledger accepts any short
# ASCII token so that a change of format there does not strand accounts here.
_MYKEY_RE = re.compile(rf"[0-9A-Za-z]{{1,{MYKEY_ID_MAX}}}")
_REFERENCE_RE = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces
_KEY_RE = re.compile(r"[\x21-\x7e]{1,100}")


def amount(value: object, field: str = "amount", maximum: int = MAX_POINTS) -> int:
    """A positive whole number of points; refuses bool, float, text and huge values."""
    # bool is an int in Python and 10.0 is a float in JSON: both are refused, not coerced.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(Code.INVALID_AMOUNT, f"{field}: not an integer")
    if value <= 0 or value > maximum:
        raise InvalidInput(Code.INVALID_AMOUNT, f"{field}: must be 1..{maximum}")
    return value


def mykey_id(value: object) -> str:
    """A syntactically valid MyKey ID (existence is the directory's question)."""
    if not isinstance(value, str) or not _MYKEY_RE.fullmatch(value):
        raise InvalidInput(Code.INVALID_MYKEY_ID)
    return value


def reference(value: object, field: str = "reference") -> str:
    """A caller's reference (partner reference, terminal request id)."""
    if not isinstance(value, str) or not _REFERENCE_RE.fullmatch(value):
        raise InvalidInput(Code.INVALID_REFERENCE, field)
    return value


def idempotency_key(value: object) -> str:
    """An idempotency key given by a page or a terminal (1-100 printable ASCII)."""
    if not isinstance(value, str) or not _KEY_RE.fullmatch(value):
        raise InvalidInput(Code.INVALID_INPUT, "idempotency key: 1-100 printable ASCII")
    return value


def text(value: object, field: str, max_length: int = 200) -> str:
    """A required, non-blank string of bounded length."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInput(Code.INVALID_INPUT, f"{field}: 1-{max_length} characters")
    return value


def strict_fields(
    body: object, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A JSON object with exactly the known fields: unknown ones are refused, not ignored."""
    if not isinstance(body, dict):
        raise InvalidInput(Code.INVALID_INPUT, "a JSON object is expected")
    unknown = set(body) - required - optional
    if unknown:
        raise InvalidInput(Code.UNKNOWN_FIELD, ", ".join(sorted(unknown)))
    missing = required - set(body)
    if missing:
        raise InvalidInput(Code.MISSING_FIELD, ", ".join(sorted(missing)))
    return body


def payload_hash(payload: dict[str, object]) -> str:
    """SHA-256 of a canonical JSON payload: what a replay must match."""
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def utc_now(now: datetime | None = None) -> datetime:
    """`now` (tests pass a clock) or the current UTC time, always aware."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return now.astimezone(UTC)
