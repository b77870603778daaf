"""全国地方公共団体コード: the check digit, the prefecture, refusals."""

from __future__ import annotations

import pytest

from webapp.places import codes


@pytest.mark.parametrize(
    ("code", "prefecture", "is_prefecture"),
    [
        ("131016", "130001", False),  # 千代田区
        ("011002", "010006", False),  # 札幌市
        ("010006", "010006", True),  # 北海道
        ("130001", "130001", True),  # 東京都
        ("012025", "010006", False),  # 函館市
        ("472018", "470007", False),  # 那覇市
        ("１３１０１６", "130001", False),  # full-width digits, as typed on a Japanese IME
        (" 131016 ", "130001", False),
    ],
)
def test_valid_codes(code: str, prefecture: str, is_prefecture: bool) -> None:
    place = codes.validate(code)
    assert place.prefecture == prefecture and place.is_prefecture is is_prefecture


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("131017", "check_digit"),
        ("131999", "check_digit"),
        ("011001", "check_digit"),
        ("13101", "format"),
        ("1310166", "format"),
        ("13101x", "format"),
        ("", "format"),
        ("١٣١٠١٦", "format"),  # other scripts' digits are not JIS codes
        ("481009", "prefecture"),
        ("000000", "prefecture"),
    ],
)
def test_refused_codes(code: str, reason: str) -> None:
    with pytest.raises(codes.CodeError) as refused:
        codes.validate(code)
    assert refused.value.reason == reason
    ja, en = codes.MESSAGES[reason]
    assert ja and en


def test_check_digit_formula_over_every_prefecture() -> None:
    """(11 - (d1*6 + d2*5 + d3*4 + d4*3 + d5*2) mod 11) mod 10, for all 47."""
    assert len(codes.PREFECTURES) == 47
    for two in codes.PREFECTURES:
        digits = [int(d) for d in two + "000"]
        expected = (11 - sum(d * w for d, w in zip(digits, (6, 5, 4, 3, 2), strict=True)) % 11) % 10
        assert codes.with_check_digit(two + "000")[-1] == str(expected)
        assert codes.validate(codes.with_check_digit(two + "000")).is_prefecture
