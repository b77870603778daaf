"""Customer number rules: every vector of docs/library-interop.md, then validation."""

from __future__ import annotations

import pytest

from webapp.catalogue import number_reason
from webapp.providers.numbers import (
    CheckRule,
    NumberFormatError,
    Reason,
    compute_check,
    nw7_symbol,
    parse_rule,
    validate,
)

# (data, rule, variant, start, stop, expected check) — the table in library-interop.md.
VECTORS = [
    # mod 16 with A…A, C…C and the sources' own examples
    ("1234567890", "mod16", None, "A", "A", "3"),
    ("0000123", "mod16", None, "A", "A", "-"),
    ("37859", "mod16", None, "A", "B", "+"),
    ("01234", "mod16", None, "A", "B", "5"),
    ("1234567890", "mod16", None, "C", "C", "+"),
    ("0000123", "mod16", None, "C", "C", "6"),
    # 7DR / 7DSR
    ("1234567890", "7dr", None, "A", "A", "3"),
    ("1234567890", "7dsr", None, "A", "A", "4"),
    ("0000123", "7dr", None, "A", "A", "4"),
    ("0000123", "7dsr", None, "A", "A", "3"),
    ("123456", "7dr", None, "A", "A", "4"),
    ("12345678901", "7dr", None, "A", "A", "3"),
    # 9DR / 9DSR, with both remainder-0 variants
    ("1234567890", "9dr", None, "A", "A", "0"),
    ("1234567890", "9dsr", "zero", "A", "A", "0"),
    ("1234567890", "9dsr", "raw", "A", "A", "9"),
    ("0000123", "9dr", None, "A", "A", "6"),
    ("0000123", "9dsr", "zero", "A", "A", "3"),
    ("0000123", "9dsr", "raw", "A", "A", "3"),
    # mod 10 weight 2-1 分割 (Luhn)
    ("1234567890", "mod10_w21_split", None, "A", "A", "3"),
    ("0000123", "mod10_w21_split", None, "A", "A", "0"),
    ("12345678", "mod10_w21_split", None, "A", "A", "2"),
    ("20151119", "mod10_w21_split", None, "A", "A", "3"),
    ("20151149", "mod10_w21_split", None, "A", "A", "0"),
    # mod 10 weight 2-1 一括 (12345678: sum 56 → 4)
    ("1234567890", "mod10_w21_whole", None, "A", "A", "5"),
    ("0000123", "mod10_w21_whole", None, "A", "A", "0"),
    ("12345678", "mod10_w21_whole", None, "A", "A", "4"),
    # mod 10 weight 3-1
    ("1234567890", "mod10_w31", None, "A", "A", "5"),
    ("0000123", "mod10_w31", None, "A", "A", "6"),
    ("351386327796", "mod10_w31", None, "A", "A", "2"),
    # mod 11 weights 2-7, variants a/b/c
    *[("1234567890", "mod11_w27", v, "A", "A", "3") for v in "abc"],
    *[("0000123", "mod11_w27", v, "A", "A", "6") for v in "abc"],
    *[("12345", "mod11_w27", v, "A", "A", "5") for v in "abc"],
    ("0000014", "mod11_w27", "a", "A", "A", "0"),
    ("0000014", "mod11_w27", "b", "A", "A", "1"),
    ("0000014", "mod11_w27", "c", "A", "A", "0"),
    ("0000006", "mod11_w27", "a", "A", "A", "0"),
    ("0000006", "mod11_w27", "b", "A", "A", "0"),
    ("0000006", "mod11_w27", "c", "A", "A", "X"),
]


@pytest.mark.parametrize(("data", "rule", "variant", "start", "stop", "expected"), VECTORS)
def test_check_vectors(
    data: str, rule: str, variant: str | None, start: str, stop: str, expected: str
) -> None:
    assert compute_check(data, rule, variant, start=start, stop=stop) == expected


def test_luhn_sum_of_12345678_is_56_whole() -> None:
    # The doc's worked example: products added whole give 56, so the check is 4.
    assert compute_check("12345678", CheckRule.MOD10_W21_WHOLE) == "4"


@pytest.mark.parametrize(
    ("data", "settings", "symbol"),
    [
        ("1234567890", {"barcode_check": "mod16"}, "A12345678903A"),
        ("0000123", {"barcode_check": "mod16"}, "A0000123-A"),
        ("37859", {"barcode_check": "mod16", "nw7_stop": "B"}, "A37859+B"),
        (
            "1234567890",
            {"barcode_check": "mod16", "nw7_start": "C", "nw7_stop": "C"},
            "C1234567890+C",
        ),
        ("1234567890", {}, "A1234567890A"),
        ("1234567890", {"barcode_check": "7dsr"}, "A12345678904A"),
        ("1234567890", {"barcode_check": "9dsr", "barcode_check_variant": "raw"}, "A12345678909A"),
    ],
)
def test_nw7_symbol(data: str, settings: dict[str, str], symbol: str) -> None:
    assert nw7_symbol(data, settings) == symbol


def test_mod16_remainder_zero_is_digit_zero_not_a() -> None:
    # A + data + A whose sum is a multiple of 16 must get '0'.
    for n in range(1000):
        data = f"{n:03d}"
        check = compute_check(data, "mod16")
        assert check != "A"
        total = sum("0123456789-$:/.+ABCD".index(c) for c in "A" + data + check + "A")
        assert total % 16 == 0


@pytest.mark.parametrize(
    ("rule", "number"),
    [
        ({"check": "mod16", "charset": "nw7"}, "12345678903"),
        ({"check": "7dr"}, "12345678903"),
        ({"check": "mod10_w21_split"}, "123456782"),
        ({"check": "mod11_w27", "check_variant": "c"}, "0000006X"),
        ({"check": "mod10_w31"}, "3513863277962"),
        ({}, "0042"),
    ],
)
def test_validate_accepts(rule: dict[str, str], number: str) -> None:
    assert validate(number, rule) == number


def test_validate_normalizes_full_width_spaces_and_printed_start_stop() -> None:
    assert validate("１２３４ ５６７８２", {"check": "mod10_w21_split"}) == "123456782"
    assert validate("A12345678903A", {"check": "mod16", "charset": "nw7"}) == "12345678903"
    assert validate("0000006x", {"check": "mod11_w27", "check_variant": "c"}) == "0000006X"


@pytest.mark.parametrize(
    ("rule", "number", "reason"),
    [
        ({}, "", Reason.EMPTY),
        ({}, "   ", Reason.EMPTY),
        ({"min_length": 8}, "1234", Reason.TOO_SHORT),
        ({"max_length": 4}, "12345", Reason.TOO_LONG),
        ({}, "12-34", Reason.BAD_CHARACTERS),
        ({"charset": "nw7"}, "12a34", Reason.BAD_CHARACTERS),
        ({"check": "mod11_w27", "check_variant": "a"}, "0000006X", Reason.BAD_CHARACTERS),
        ({"check": "mod10_w21_split"}, "123456781", Reason.BAD_CHECK),
        ({"check": "mod16", "charset": "nw7"}, "12345678904", Reason.BAD_CHECK),
    ],
)
def test_validate_refuses_with_reason(rule: dict[str, object], number: str, reason: Reason) -> None:
    with pytest.raises(NumberFormatError) as info:
        validate(number, rule)
    assert info.value.reason is reason
    assert str(number_reason(reason.value))  # worded by webapp.catalogue


@pytest.mark.parametrize(
    "settings",
    [
        {"min_length": 0},
        {"min_length": 9, "max_length": 8},
        {"max_length": 65},
        {"charset": "latin"},
        {"check": "mod97"},
        {"check": "7dr", "charset": "nw7"},
        {"check": "mod11_w27", "check_variant": "z"},
        {"start": "E"},
        {"check": "7dr", "min_length": 1},
    ],
)
def test_parse_rule_refuses_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_rule(settings)


def test_parse_rule_round_trip_and_default_variant() -> None:
    rule = parse_rule({"check": "9dsr", "min_length": "4", "max_length": "10"})
    assert rule.check_variant == "zero"
    assert parse_rule(rule.as_dict()) == rule


def test_numeric_rules_need_digits() -> None:
    with pytest.raises(ValueError):
        compute_check("12-3", "7dr")
    with pytest.raises(ValueError):
        compute_check("", "mod10_w31")
