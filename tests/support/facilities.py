"""A country's worth of facilities for tests: 5,000 providers in one bulk INSERT.

Synthetic municipalities (cities numbered 201.. in each prefecture, so no real code is
taken) with five libraries each, plus one real-looking target the tests look for:
千代田区立日比谷図書文化館 in 千代田区 (131016).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from webapp.places import codes
from webapp.places.kana import search_key
from webapp.providers.models import Provider, ProviderKind
from webapp.providers.numbers import parse_rule

FIRST = ("あお", "さく", "ふじ", "みず", "たか", "おお", "なが", "かわ", "いし", "やま")
SECOND = ("ば", "ら", "の", "さわ", "はし", "た", "がわ", "ぐち", "まち", "もり")
BRANCHES = (
    ("中央", "ちゅうおう"),
    ("北", "きた"),
    ("南", "みなみ"),
    ("東", "ひがし"),
    ("西", "にし"),
)


@dataclass(frozen=True)
class Target:
    """The library the tests find."""

    code: str = "JP-1000123"
    name: str = "千代田区立日比谷図書文化館"
    kana: str = "ちよだくりつひびやとしょぶんかかん"
    prefecture: str = "130001"
    prefecture_name: str = "東京都"
    municipality: str = "131016"
    municipality_name: str = "千代田区"


TARGET = Target()


def _row(code: str, name: str, kana: str, municipality: str, place: str) -> dict[str, object]:
    return {
        "code": code,
        "kind": ProviderKind.LIBRARY,
        "name_ja": name,
        "name_en": "",
        "terms_ja": f"{name} 利用規約",
        "terms_en": "",
        "terms_version": 1,
        "number_rule": parse_rule(None).as_dict(),
        "counter_settings": {},
        "prefecture_code": codes.LocalGovCode(municipality).prefecture,
        "municipality_code": municipality,
        "municipality_name": place,
        "name_kana": kana,
        "search_name": search_key(kana),
        "search_text": search_key(f"{name} {kana} {code}"),
    }


def generate_providers(s: Session, count: int = 5000) -> Target:
    """`count` libraries (the target among them), inserted in one statement."""
    rows = [
        _row(TARGET.code, TARGET.name, TARGET.kana, TARGET.municipality, TARGET.municipality_name)
    ]
    prefectures = list(codes.PREFECTURES)
    n = 0
    while len(rows) < count:
        town = n // len(BRANCHES)
        prefecture = prefectures[town % len(prefectures)]
        number = 201 + town // len(prefectures)
        municipality = codes.with_check_digit(f"{prefecture}{number:03d}")
        syllables = FIRST[town % 10] + SECOND[(town // 10) % 10]
        place = f"{syllables}市"
        branch, reading = BRANCHES[n % len(BRANCHES)]
        rows.append(
            _row(
                f"JP-2{n:06d}",
                f"{place}立{branch}図書館",
                f"{syllables}しりつ{reading}としょかん",
                municipality,
                place,
            )
        )
        n += 1
    s.execute(insert(Provider), rows)
    s.commit()
    return TARGET
