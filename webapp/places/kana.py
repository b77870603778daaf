"""Search keys for names and kana readings, as a person types them.

NFKC folds half-width katakana (ﾄｼｮｶﾝ) and full-width Latin/digits (ＪＰ－１) into their
ordinary forms; katakana then becomes hiragana, so トショカン, ﾄｼｮｶﾝ and としょかん meet;
Latin letters fold to lower case and spaces (ASCII or 全角) are dropped, since a reading is
typed with or without them.
"""

from __future__ import annotations

import unicodedata

_KATAKANA_FIRST, _KATAKANA_LAST = 0x30A1, 0x30F6  # ァ .. ヶ
_TO_HIRAGANA = 0x30A1 - 0x3041


def to_hiragana(text: str) -> str:
    """Katakana letters as hiragana (ヴ→ゔ); everything else unchanged."""
    return "".join(
        chr(ord(c) - _TO_HIRAGANA) if _KATAKANA_FIRST <= ord(c) <= _KATAKANA_LAST else c
        for c in text
    )


def search_key(text: str) -> str:
    """The form names, readings and queries are compared in (NFKC, hiragana, lower case,
    no spaces)."""
    folded = to_hiragana(unicodedata.normalize("NFKC", text)).casefold()
    return "".join(c for c in folded if not c.isspace())
