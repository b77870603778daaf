"""Search keys: a reading typed in hiragana, katakana, half- or full-width meets itself."""

from __future__ import annotations

import pytest

from webapp.places.kana import search_key, to_hiragana


@pytest.mark.parametrize(
    "typed",
    ["としょかん", "トショカン", "ﾄｼｮｶﾝ", "と しょ かん", "ト　ショ　カン", "ﾄ ｼｮ ｶﾝ"],
)
def test_every_way_of_typing_a_reading_meets(typed: str) -> None:
    assert search_key(typed) == "としょかん"


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("ﾋﾞｼﾞｭﾂｶﾝ", "びじゅつかん"),  # half-width voiced marks compose under NFKC
        ("ﾊﾟｰｸ", "ぱーく"),  # the prolonged sound mark stays
        ("ヴィラ", "ゔぃら"),
        ("ＪＰ－１０００００１", "jp-1000001"),  # full-width Latin and digits
        ("jp-1000001", "jp-1000001"),
        ("千代田区立図書館", "千代田区立図書館"),  # kanji unchanged
        ("", ""),
    ],
)
def test_search_keys(typed: str, key: str) -> None:
    assert search_key(typed) == key


def test_to_hiragana_leaves_other_letters() -> None:
    assert to_hiragana("アイウ・ー abc 漢字") == "あいう・ー abc 漢字"
