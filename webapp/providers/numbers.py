"""Customer number format rules (利用者番号の形式) and NW-7 check characters.

Pure functions, no I/O. The rules follow docs/library-interop.md: NW-7 (Codabar, JIS X 0506)
has no check character of its own, so each library system picks one (or none). Weights
always count from the rightmost data digit.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DIGITS = "0123456789"
NW7_DATA = DIGITS + "-$:/.+"
NW7_START_STOP = "ABCD"
# Modulus 16 values (AIM / BS EN 798): digits, then - $ : / . +, then A-D.
_MOD16_CHARS = NW7_DATA + NW7_START_STOP
MAX_NUMBER_LENGTH = 64


class CheckRule(enum.StrEnum):
    """Check character rules used by library systems (チェックデジット方式)."""

    NONE = "none"
    MOD16 = "mod16"
    DR7 = "7dr"
    DSR7 = "7dsr"
    DR9 = "9dr"
    DSR9 = "9dsr"
    MOD10_W21_SPLIT = "mod10_w21_split"  # Luhn, 分割
    MOD10_W21_WHOLE = "mod10_w21_whole"  # 一括
    MOD10_W31 = "mod10_w31"
    MOD11_W27 = "mod11_w27"


# The variants a rule accepts; the first one is the default.
VARIANTS: dict[CheckRule, tuple[str, ...]] = {
    CheckRule.DSR7: ("zero", "raw"),
    CheckRule.DSR9: ("zero", "raw"),
    CheckRule.MOD11_W27: ("a", "b", "c"),
}

_NUMERIC_RULES = frozenset(CheckRule) - {CheckRule.NONE, CheckRule.MOD16}


class Charset(enum.StrEnum):
    """Characters a customer number may hold."""

    DIGITS = "digits"
    NW7 = "nw7"


def _digits(data: str) -> list[int]:
    if not data or any(c not in DIGITS for c in data):
        raise ValueError("this check rule needs digits only")
    return [int(c) for c in data]


def _weighted(data: str, weights: tuple[int, ...]) -> list[int]:
    """Products of each digit and its weight, weights counted from the rightmost digit."""
    values = _digits(data)[::-1]
    return [v * weights[i % len(weights)] for i, v in enumerate(values)]


def compute_check(
    data: str,
    rule: CheckRule | str,
    variant: str | None = None,
    *,
    start: str = "A",
    stop: str = "A",
) -> str:
    """The check character of `data` under `rule` ('' for none); ValueError if not computable."""
    rule = CheckRule(rule)
    if rule in VARIANTS:
        variant = variant or VARIANTS[rule][0]
        if variant not in VARIANTS[rule]:
            raise ValueError(f"unknown variant {variant!r} for {rule}")
    if rule is CheckRule.NONE:
        return ""
    if rule is CheckRule.MOD16:
        # The sum covers start and stop too; remainder 0 is '0', never 'A' (a common bug).
        if start not in NW7_START_STOP or stop not in NW7_START_STOP:
            raise ValueError("start/stop must be one of A-D")
        if not data or any(c not in NW7_DATA for c in data):
            raise ValueError("mod 16 needs NW-7 data characters")
        total = sum(_MOD16_CHARS.index(c) for c in start + data + stop)
        return _MOD16_CHARS[(16 - total % 16) % 16]
    if rule in (CheckRule.DR7, CheckRule.DSR7, CheckRule.DR9, CheckRule.DSR9):
        _digits(data)
        m = 7 if rule in (CheckRule.DR7, CheckRule.DSR7) else 9
        r = int(data) % m
        if rule in (CheckRule.DR7, CheckRule.DR9):
            return str(r)
        # DSR with remainder 0: PFU's readers print 0, some generators print the raw 7/9.
        return "0" if r == 0 and variant == "zero" else str(m - r)
    if rule is CheckRule.MOD10_W21_SPLIT:
        total = sum(p // 10 + p % 10 for p in _weighted(data, (2, 1)))
        return str((10 - total % 10) % 10)
    if rule is CheckRule.MOD10_W21_WHOLE:
        return str((10 - sum(_weighted(data, (2, 1))) % 10) % 10)
    if rule is CheckRule.MOD10_W31:
        return str((10 - sum(_weighted(data, (3, 1))) % 10) % 10)
    # Modulus 11, weights 2-7.
    r = sum(_weighted(data, (2, 3, 4, 5, 6, 7))) % 11
    if variant == "a":  # Hitachi: remainders 0 and 1 give 0
        return "0" if r <= 1 else str(11 - r)
    if variant == "b":
        return str((11 - r) % 10)
    return {10: "X", 11: "0"}.get(11 - r, str(11 - r))  # variant c


@dataclass(frozen=True)
class NumberRule:
    """A provider's customer number format: length, characters and check character."""

    min_length: int = 1
    max_length: int = 20
    charset: Charset = Charset.DIGITS
    check: CheckRule = CheckRule.NONE
    check_variant: str = ""
    # Start/stop characters: mod 16 sums them; a citizen may also type them as printed.
    start: str = "A"
    stop: str = "A"

    def as_dict(self) -> dict[str, object]:
        """JSON form, as stored in Provider.number_rule."""
        return {
            "min_length": self.min_length,
            "max_length": self.max_length,
            "charset": self.charset.value,
            "check": self.check.value,
            "check_variant": self.check_variant,
            "start": self.start,
            "stop": self.stop,
        }


def parse_rule(settings: Mapping[str, Any] | None) -> NumberRule:
    """A NumberRule from stored/submitted settings; ValueError names the bad setting."""
    s = dict(settings or {})
    try:
        check = CheckRule(s.get("check") or "none")
        min_length = int(s.get("min_length", 1 if check is CheckRule.NONE else 2))
        max_length = int(s.get("max_length", 20))
        charset = Charset(s.get("charset") or "digits")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid number rule: {exc}") from exc
    if not 1 <= min_length <= max_length <= MAX_NUMBER_LENGTH:
        raise ValueError(f"lengths must satisfy 1 <= min <= max <= {MAX_NUMBER_LENGTH}")
    variant = str(s.get("check_variant") or "")
    if check in VARIANTS:
        variant = variant or VARIANTS[check][0]
        if variant not in VARIANTS[check]:
            raise ValueError(f"check_variant must be one of {VARIANTS[check]}")
    else:
        variant = ""
    start, stop = str(s.get("start") or "A").upper(), str(s.get("stop") or "A").upper()
    if start not in NW7_START_STOP or stop not in NW7_START_STOP or len(start + stop) != 2:
        raise ValueError("start and stop must each be one of A, B, C, D")
    if check in _NUMERIC_RULES and charset is not Charset.DIGITS:
        raise ValueError(f"check rule {check} works on digits only")
    if check is not CheckRule.NONE and min_length < 2:
        raise ValueError("a number with a check character has at least 2 characters")
    return NumberRule(min_length, max_length, charset, check, variant, start, stop)


class Reason(enum.StrEnum):
    """Why a customer number was refused."""

    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_CHARACTERS = "bad_characters"
    BAD_CHECK = "bad_check"


class NumberFormatError(ValueError):
    """A customer number does not match its provider's rule."""

    def __init__(self, reason: Reason) -> None:
        self.reason = reason  # webapp.catalogue.number_reason words it
        super().__init__(reason.value)


_SPACES = re.compile(r"[\s\u3000]+")


def normalize(number: str) -> str:
    """Full-width to half-width (NFKC), spaces removed, letters upper-cased."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", number)).upper()


def validate(number: str, settings: Mapping[str, Any] | NumberRule | None) -> str:
    """The normalized number if it matches the rule; NumberFormatError with a reason if not."""
    rule = settings if isinstance(settings, NumberRule) else parse_rule(settings)
    n = normalize(number)
    # A citizen may copy the barcode text as printed, start/stop included (A1234A).
    if len(n) >= 3 and n[0] in NW7_START_STOP and n[-1] in NW7_START_STOP:
        n = n[1:-1]
    if not n:
        raise NumberFormatError(Reason.EMPTY)
    allowed = DIGITS if rule.charset is Charset.DIGITS else NW7_DATA
    body, last = n[:-1], n[-1]
    last_ok = last in allowed or (
        rule.check is CheckRule.MOD11_W27 and rule.check_variant == "c" and last == "X"
    )
    if any(c not in allowed for c in body) or not last_ok:
        raise NumberFormatError(Reason.BAD_CHARACTERS)
    if len(n) < rule.min_length:
        raise NumberFormatError(Reason.TOO_SHORT)
    if len(n) > rule.max_length:
        raise NumberFormatError(Reason.TOO_LONG)
    if rule.check is not CheckRule.NONE:
        expected = compute_check(
            body, rule.check, rule.check_variant or None, start=rule.start, stop=rule.stop
        )
        if last != expected:
            raise NumberFormatError(Reason.BAD_CHECK)
    return n


def nw7_symbol(number: str, settings: Mapping[str, Any]) -> str:
    """Full NW-7 text for a barcode: start, data, check character (if any), stop.

    `settings` are a provider's counter settings: nw7_start, nw7_stop, barcode_check,
    barcode_check_variant. The check goes just before the stop character.
    """
    start = str(settings.get("nw7_start") or "A").upper()
    stop = str(settings.get("nw7_stop") or "A").upper()
    if start not in NW7_START_STOP or stop not in NW7_START_STOP:
        raise ValueError("start and stop must each be one of A, B, C, D")
    data = normalize(number)
    if not data or any(c not in NW7_DATA for c in data):
        raise ValueError("NW-7 data holds digits and - $ : / . + only")
    check = compute_check(
        data,
        settings.get("barcode_check") or CheckRule.NONE,
        settings.get("barcode_check_variant") or None,
        start=start,
        stop=stop,
    )
    return f"{start}{data}{check}{stop}"
