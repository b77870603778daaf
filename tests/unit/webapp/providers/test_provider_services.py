"""Provider services: ISIL and codes, terms versions, settings validation."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from webapp.providers import services
from webapp.providers.models import ProviderKind
from webapp.providers.services import ProviderError


@pytest.mark.parametrize(
    ("code", "normalized"),
    [
        ("JP-1000001", "JP-1000001"),
        (" jp-1234567 ", "JP-1234567"),
        ("US-DLC", "US-DLC"),
        ("DE-101", "DE-101"),
        ("GB-UkOxU", "GB-UkOxU"),
        ("O-M1234", "O-M1234"),
    ],
)
def test_isil_accepted(code: str, normalized: str) -> None:
    assert services.validate_isil(code) == normalized


@pytest.mark.parametrize(
    "code",
    [
        "JP-100001",
        "JP-10000011",
        "JP-ABCDEFG",
        "1000001",
        "JP1000001",
        "",
        "US-",
        "-DLC",
        "US-ABCDEFGHIJKL",
        "US-DL C",
        "TOOLONG-1",
    ],
)
def test_isil_refused(code: str) -> None:
    with pytest.raises(ProviderError) as info:
        services.validate_isil(code)
    assert info.value.field == "code" and info.value.message("ja")


def test_other_kinds_use_an_assigned_code() -> None:
    assert services.validate_code(ProviderKind.MUSEUM, " city-museum_1 ") == "city-museum_1"
    with pytest.raises(ProviderError):
        services.validate_code(ProviderKind.SPORTS, "x")
    with pytest.raises(ProviderError):
        services.validate_code("zoo", "ZOO-1")
    with pytest.raises(ProviderError):
        services.validate_code(ProviderKind.LIBRARY, "city library")


def test_create_provider_and_unique_code(s: Session) -> None:
    p = services.create_provider(
        s,
        code="jp-1000001",
        kind=ProviderKind.LIBRARY,
        name_ja="中央図書館",
        number_rule_settings={"check": "7dr", "max_length": 11},
        counter_settings={"mode": "B", "barcode_check": "mod16", "pin_required": "on"},
    )
    assert p.code == "JP-1000001" and p.terms_version == 1
    assert p.number_rule["check"] == "7dr" and p.number_rule["min_length"] == 2
    assert p.counter_settings["mode"] == "B" and p.counter_settings["pin_required"] is True
    with pytest.raises(ProviderError) as info:
        services.create_provider(s, code="JP-1000001", kind=ProviderKind.LIBRARY, name_ja="別")
    assert info.value.field == "code"
    assert [x.code for x in services.list_providers(s)] == ["JP-1000001"]


def test_terms_edit_bumps_version_only_on_change(s: Session) -> None:
    p = services.create_provider(
        s, code="museum-1", kind=ProviderKind.MUSEUM, name_ja="美術館", terms_ja="第1条"
    )
    assert not services.update_terms(s, p, "第1条", "")
    assert p.terms_version == 1
    assert services.update_terms(s, p, "第1条\r\n第2条", "")
    assert p.terms_version == 2 and p.terms_ja == "第1条\n第2条"


@pytest.mark.parametrize(
    "counter",
    [
        {"mode": "D"},
        {"symbology": "qr"},
        {"nw7_start": "E"},
        {"nw7_stop": "AB"},
        {"barcode_check": "mod97"},
        {"barcode_check": "9dsr", "barcode_check_variant": "x"},
        {"barcode_check": "7dr", "symbology": "code128"},
        {"keyboard_suffix": "space"},
    ],
)
def test_counter_settings_refused(counter: dict[str, str]) -> None:
    with pytest.raises(ProviderError) as info:
        services.parse_counter_settings(counter)
    assert info.value.field.startswith("counter_settings.")


def test_counter_settings_defaults_and_rule_combination() -> None:
    out = services.parse_counter_settings({"barcode_check": "9dsr"})
    assert out == {
        "mode": "A",
        "pin_required": False,
        "symbology": "nw7",
        "nw7_start": "A",
        "nw7_stop": "A",
        "barcode_check": "9dsr",
        "barcode_check_variant": "zero",
        "code39_check": False,
        "keyboard_suffix": "enter",
    }
    with pytest.raises(ProviderError):
        services.parse_counter_settings({"barcode_check": "7dr"}, {"charset": "nw7"})
    services.parse_counter_settings({"barcode_check": "mod16"}, {"charset": "nw7"})


def test_update_provider_validates_everything_first(s: Session) -> None:
    p = services.create_provider(s, code="bike-1", kind=ProviderKind.BIKE_PARK, name_ja="駐輪場")
    with pytest.raises(ProviderError):
        services.update_provider(s, p, name_ja="新", number_rule_settings={"min_length": 0})
    assert p.name_ja == "駐輪場"
    services.update_provider(
        s,
        p,
        name_en="Bike park",
        number_rule_settings={"charset": "nw7"},
        counter_settings={"mode": "C", "keyboard_suffix": "tab"},
    )
    assert p.number_rule["charset"] == "nw7" and p.counter_settings["keyboard_suffix"] == "tab"


def test_a_provider_knows_where_it_is_and_how_it_reads(s: Session) -> None:
    p = services.create_provider(
        s,
        code="JP-1000123",
        kind=ProviderKind.LIBRARY,
        name_ja="千代田区立日比谷図書文化館",
        name_kana="チヨダクリツ ヒビヤトショブンカカン",
        municipality_code="１３１０１６",
        municipality_name="千代田区",
    )
    assert (p.prefecture_code, p.municipality_code, p.municipality_name) == (
        "130001",
        "131016",
        "千代田区",
    )
    assert p.search_name == "ちよだくりつひびやとしょぶんかかん"
    assert "jp-1000123" in p.search_text and "日比谷" in p.search_text
    prefectural = services.create_provider(
        s, code="JP-1000124", kind=ProviderKind.LIBRARY, name_ja="都立図書館",
        municipality_code="130001",
    )  # fmt: skip
    assert prefectural.municipality_name == "東京都"  # a prefecture's own facility


@pytest.mark.parametrize(
    ("fields", "field", "ja"),
    [
        ({"municipality_code": "131017"}, "municipality_code", "検査数字"),
        ({"municipality_code": "13101"}, "municipality_code", "6桁"),
        ({"municipality_code": "991016"}, "municipality_code", "都道府県"),
        ({"municipality_code": "131016"}, "municipality_name", "市区町村名"),
        ({"name_kana": "Chiyoda<script>"}, "name_kana", "ひらがな"),
    ],
)
def test_a_wrong_place_or_reading_is_refused_in_japanese_first(
    s: Session, fields: dict[str, str], field: str, ja: str
) -> None:
    with pytest.raises(services.ProviderError) as refused:
        services.create_provider(
            s, code="JP-1000125", kind=ProviderKind.LIBRARY, name_ja="図書館", **fields
        )
    assert refused.value.field == field and ja in refused.value.message("ja")
    assert refused.value.message("en")


def test_kind_changes_keep_the_code_rule(s: Session) -> None:
    library = services.create_provider(
        s, code="JP-1000001", kind=ProviderKind.LIBRARY, name_ja="館"
    )
    services.update_provider(s, library, kind=ProviderKind.UNIVERSITY_LIBRARY)
    assert library.kind == ProviderKind.UNIVERSITY_LIBRARY
    services.update_provider(s, library, kind=ProviderKind.MUSEUM)  # JP-1000001 is a valid code
    museum = services.create_provider(s, code="city_museum", kind=ProviderKind.MUSEUM, name_ja="館")
    with pytest.raises(services.ProviderError):
        services.update_provider(s, museum, kind=ProviderKind.LIBRARY)  # not an ISIL
    with pytest.raises(services.ProviderError):
        services.update_provider(s, museum, kind="transport")
    services.update_provider(s, museum, place=("011002", "札幌市"), name_kana="サッポロ")
    assert museum.prefecture_code == "010006" and museum.search_name == "さっぽろ"
