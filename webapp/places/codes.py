"""全国地方公共団体コード (JIS X 0401 prefectures, JIS X 0402 municipalities).

A code is 6 digits: the prefecture (2), the municipality within it (3; 000 for the
prefecture itself) and a check digit over the first five, weights 6-5-4-3-2, modulus 11:
check = (11 - sum mod 11) mod 10 (総務省「全国地方公共団体コード」の検査数字). Examples:
131016 千代田区, 011002 札幌市, 010006 北海道.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

WEIGHTS = (6, 5, 4, 3, 2)

# JIS X 0401: the 47 prefectures, by their 2-digit number (name, reading in hiragana).
PREFECTURES: dict[str, tuple[str, str]] = {
    "01": ("北海道", "ほっかいどう"), "02": ("青森県", "あおもりけん"),
    "03": ("岩手県", "いわてけん"), "04": ("宮城県", "みやぎけん"),
    "05": ("秋田県", "あきたけん"), "06": ("山形県", "やまがたけん"),
    "07": ("福島県", "ふくしまけん"), "08": ("茨城県", "いばらきけん"),
    "09": ("栃木県", "とちぎけん"), "10": ("群馬県", "ぐんまけん"),
    "11": ("埼玉県", "さいたまけん"), "12": ("千葉県", "ちばけん"),
    "13": ("東京都", "とうきょうと"), "14": ("神奈川県", "かながわけん"),
    "15": ("新潟県", "にいがたけん"), "16": ("富山県", "とやまけん"),
    "17": ("石川県", "いしかわけん"), "18": ("福井県", "ふくいけん"),
    "19": ("山梨県", "やまなしけん"), "20": ("長野県", "ながのけん"),
    "21": ("岐阜県", "ぎふけん"), "22": ("静岡県", "しずおかけん"),
    "23": ("愛知県", "あいちけん"), "24": ("三重県", "みえけん"),
    "25": ("滋賀県", "しがけん"), "26": ("京都府", "きょうとふ"),
    "27": ("大阪府", "おおさかふ"), "28": ("兵庫県", "ひょうごけん"),
    "29": ("奈良県", "ならけん"), "30": ("和歌山県", "わかやまけん"),
    "31": ("鳥取県", "とっとりけん"), "32": ("島根県", "しまねけん"),
    "33": ("岡山県", "おかやまけん"), "34": ("広島県", "ひろしまけん"),
    "35": ("山口県", "やまぐちけん"), "36": ("徳島県", "とくしまけん"),
    "37": ("香川県", "かがわけん"), "38": ("愛媛県", "えひめけん"),
    "39": ("高知県", "こうちけん"), "40": ("福岡県", "ふくおかけん"),
    "41": ("佐賀県", "さがけん"), "42": ("長崎県", "ながさきけん"),
    "43": ("熊本県", "くまもとけん"), "44": ("大分県", "おおいたけん"),
    "45": ("宮崎県", "みやざきけん"), "46": ("鹿児島県", "かごしまけん"),
    "47": ("沖縄県", "おきなわけん"),
}  # fmt: skip


class CodeError(ValueError):
    """A local government code was refused; `reason` says why (format, check, prefecture)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_digit(first_five: str) -> str:
    """The check digit of a code's first five digits."""
    total = sum(int(d) * w for d, w in zip(first_five, WEIGHTS, strict=True))
    return str((11 - total % 11) % 10)


def with_check_digit(first_five: str) -> str:
    """The 6-digit code for five digits (e.g. 13101 -> 131016)."""
    return first_five + check_digit(first_five)


@dataclass(frozen=True)
class LocalGovCode:
    """A valid 6-digit code: its prefecture and whether it names the prefecture itself."""

    code: str

    @property
    def prefecture(self) -> str:
        """The prefecture's own 6-digit code (its 2 digits + 000 + check digit)."""
        return with_check_digit(self.code[:2] + "000")

    @property
    def is_prefecture(self) -> bool:
        """Whether the code names a prefecture (都道府県) rather than a municipality."""
        return self.code[2:5] == "000"


def validate(raw: str) -> LocalGovCode:
    """The code, normalized (full-width digits and spaces allowed); CodeError if it is not
    6 digits, its check digit is wrong, or no prefecture has its first two digits."""
    code = unicodedata.normalize("NFKC", str(raw)).strip().replace("-", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise CodeError("format")
    if code[:2] not in PREFECTURES:
        raise CodeError("prefecture")
    if check_digit(code[:5]) != code[5]:
        raise CodeError("check_digit")
    return LocalGovCode(code)


def prefecture_name(code: str) -> str:
    """The prefecture's name for a 2- or 6-digit code ('' if unknown)."""
    return PREFECTURES.get(code[:2], ("", ""))[0]


MESSAGES = {
    "format": (
        "地方公共団体コードは6桁の数字です（例: 131016 千代田区）。",
        "A local government code is 6 digits (e.g. 131016, Chiyoda).",
    ),
    "prefecture": (
        "地方公共団体コードの最初の2桁は都道府県の番号（01〜47）です。",
        "The first two digits of a local government code are the prefecture (01-47).",
    ),
    "check_digit": (
        "地方公共団体コードの検査数字（6桁目）が合いません。入力を確かめてください。",
        "The check digit (6th digit) of this local government code is wrong: please check it.",
    ),
}
