"""Provider services: create and edit providers, terms versions, number rules, counter settings.

Plain Python over a SQLAlchemy session (no Flask). Settings are validated here, so the
JSON columns only ever hold what `numbers.parse_rule` and `parse_counter_settings` accept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..paging import QUERY_LENGTH, Page, contains, paginate
from ..places import codes
from ..places.kana import search_key
from .models import Provider, ProviderKind
from .numbers import NW7_START_STOP, VARIANTS, Charset, CheckRule, parse_rule

# ISIL (ISO 15511): prefix, hyphen, identifier; at most 16 characters. Japan's prefix is
# JP, followed by the 7 digits the National Diet Library assigns (JP-1000001).
_ISIL_JP = re.compile(r"JP-\d{7}")
_ISIL = re.compile(r"[A-Z]{1,4}-[A-Za-z0-9/:\-]{1,11}")
_LOCAL_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{1,31}")

MODES = ("A", "B", "C")  # A: digits to type, B: barcode to scan, C: typed by the bridge
SYMBOLOGIES = ("nw7", "code39", "code128")
SUFFIXES = ("enter", "tab", "none")


class ProviderError(ValueError):
    """A provider setting was refused; `field` names it, messages say why in ja and en."""

    def __init__(self, field: str, message_ja: str, message_en: str) -> None:
        self.field, self.message_ja, self.message_en = field, message_ja, message_en
        super().__init__(f"{field}: {message_en}")

    def message(self, locale: str) -> str:
        """The message in `locale` ('ja' or 'en')."""
        return self.message_en if str(locale).startswith("en") else self.message_ja


def validate_isil(code: str) -> str:
    """The normalized ISIL of a library; ProviderError unless it has the ISO 15511 form."""
    code = code.strip()
    prefix, _, rest = code.partition("-")
    code = f"{prefix.upper()}-{rest}" if rest else code.upper()
    if code.startswith("JP-"):
        if not _ISIL_JP.fullmatch(code):
            raise ProviderError(
                "code",
                "日本の図書館のISILは「JP-」と7桁の数字です（例: JP-1000001）。",
                "A Japanese library's ISIL is JP- and 7 digits (e.g. JP-1000001).",
            )
        return code
    if len(code) > 16 or not _ISIL.fullmatch(code):
        raise ProviderError(
            "code",
            "ISILの形式ではありません（例: JP-1000001）。",
            "This is not an ISIL (e.g. JP-1000001).",
        )
    return code


def validate_code(kind: str, code: str) -> str:
    """A library's ISIL, or another provider's admin-assigned code, normalized."""
    if kind not in ProviderKind.ALL:
        raise ProviderError("kind", "施設の種類が正しくありません。", "Unknown kind of provider.")
    if kind in ProviderKind.LIBRARIES:
        return validate_isil(code)
    code = code.strip()
    if not _LOCAL_CODE.fullmatch(code):
        raise ProviderError(
            "code",
            "コードは英数字と「_ . -」で2〜32文字です。",
            "A code is 2-32 letters, digits or _ . -",
        )
    return code


# A reading (よみ): kana, the prolonged sound mark, middle dot, spaces, Latin and digits
# (for names such as ＪＲ or 第２); checked after NFKC (half-width katakana allowed).
_KANA_OK = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\u30fc\u30fb A-Za-z0-9・ー\-]*")
KANA_LENGTH = 200


def validate_place(municipality_code: str, municipality_name: str) -> tuple[str, str, str]:
    """(prefecture code, municipality code, municipality name) from the form; all empty
    when no code is given; ProviderError (ja first) if the code is not a valid
    全国地方公共団体コード."""
    raw = municipality_code.strip()
    if not raw:
        return "", "", ""
    try:
        place = codes.validate(raw)
    except codes.CodeError as exc:
        ja, en = codes.MESSAGES[exc.reason]
        raise ProviderError("municipality_code", ja, en) from None
    name = municipality_name.strip() or (
        codes.prefecture_name(place.code) if place.is_prefecture else ""
    )
    if not name:
        raise ProviderError(
            "municipality_name",
            "市区町村名を入力してください（例: 千代田区）。",
            "Please enter the municipality's name (e.g. Chiyoda).",
        )
    return place.prefecture, place.code, name[:100]


def validate_kana(reading: str) -> str:
    """The reading as entered (trimmed); ProviderError unless it is kana."""
    reading = " ".join(reading.split())
    if len(reading) > KANA_LENGTH or not _KANA_OK.fullmatch(unicodedata.normalize("NFKC", reading)):
        raise ProviderError(
            "name_kana",
            "よみがなは、ひらがなまたはカタカナで入力してください（例: ちよだとしょかん）。",
            "Please type the reading in hiragana or katakana (e.g. ちよだとしょかん).",
        )
    return reading


def set_search_keys(provider: Provider) -> None:
    """Fill the provider's search keys from its name, reading and code."""
    provider.search_name = search_key(provider.name_kana or provider.name_ja)[:200]
    provider.search_text = search_key(
        f"{provider.name_ja} {provider.name_kana} {provider.name_en} {provider.code}"
    )[:500]


def number_rule(settings: Mapping[str, Any] | None) -> dict[str, object]:
    """Validated number rule settings, as stored; ProviderError names the problem."""
    try:
        return parse_rule(settings).as_dict()
    except ValueError as exc:
        raise ProviderError(
            "number_rule", f"番号の形式の設定が正しくありません: {exc}", str(exc)
        ) from exc


def _bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(value)


def _bad(field: str, en: str, ja: str) -> ProviderError:
    return ProviderError(f"counter_settings.{field}", ja, en)


def parse_counter_settings(
    settings: Mapping[str, Any] | None, rule: Mapping[str, Any] | None = None
) -> dict[str, object]:
    """Validated counter settings (output mode, barcode, keyboard suffix, PIN), with defaults."""
    s = dict(settings or {})
    out: dict[str, object] = {
        "mode": str(s.get("mode") or "A").upper(),
        "pin_required": _bool(s.get("pin_required", False)),
        "symbology": str(s.get("symbology") or "nw7").lower(),
        "nw7_start": str(s.get("nw7_start") or "A").upper(),
        "nw7_stop": str(s.get("nw7_stop") or "A").upper(),
        "barcode_check": str(s.get("barcode_check") or "none"),
        "barcode_check_variant": str(s.get("barcode_check_variant") or ""),
        "code39_check": _bool(s.get("code39_check", False)),
        "keyboard_suffix": str(s.get("keyboard_suffix") or "enter").lower(),
    }
    if out["mode"] not in MODES:
        raise _bad("mode", "mode is A, B or C", "表示方式はA・B・Cのいずれかです。")
    if out["symbology"] not in SYMBOLOGIES:
        raise _bad("symbology", "unknown barcode symbology", "バーコードの種類が正しくありません。")
    for field in ("nw7_start", "nw7_stop"):
        value = out[field]
        if not isinstance(value, str) or len(value) != 1 or value not in NW7_START_STOP:
            raise _bad(field, "start/stop is one of A-D", "スタート/ストップ文字はA〜Dです。")
    try:
        check = CheckRule(str(out["barcode_check"]))
    except ValueError:
        raise _bad(
            "barcode_check", "unknown check rule", "チェックデジット方式が正しくありません。"
        ) from None
    if check in VARIANTS:
        out["barcode_check_variant"] = out["barcode_check_variant"] or VARIANTS[check][0]
        if out["barcode_check_variant"] not in VARIANTS[check]:
            raise _bad("barcode_check_variant", "unknown variant", "方式の変種が正しくありません。")
    else:
        out["barcode_check_variant"] = ""
    if check is not CheckRule.NONE and out["symbology"] != "nw7":
        raise _bad(
            "barcode_check", "check rules apply to NW-7 only", "チェック方式はNW-7のみです。"
        )
    parsed_rule = parse_rule(rule) if rule is not None else None
    if (
        parsed_rule is not None
        and check not in (CheckRule.NONE, CheckRule.MOD16)
        and parsed_rule.charset is not Charset.DIGITS
    ):
        raise _bad(
            "barcode_check",
            "this check needs digits-only numbers",
            "この方式は数字のみの番号が必要です。",
        )
    if out["keyboard_suffix"] not in SUFFIXES:
        raise _bad(
            "keyboard_suffix", "suffix is enter, tab or none", "末尾キーが正しくありません。"
        )
    return out


def create_provider(
    s: Session,
    *,
    code: str,
    kind: str,
    name_ja: str,
    name_en: str = "",
    terms_ja: str = "",
    terms_en: str = "",
    number_rule_settings: Mapping[str, Any] | None = None,
    counter_settings: Mapping[str, Any] | None = None,
    municipality_code: str = "",
    municipality_name: str = "",
    name_kana: str = "",
) -> Provider:
    """A new provider at terms version 1; ProviderError if a setting or the code is refused."""
    code = validate_code(kind, code)
    if not name_ja.strip():
        raise ProviderError("name_ja", "名称を入力してください。", "Please enter the name.")
    rule = number_rule(number_rule_settings)
    prefecture, municipality, municipality_name = validate_place(
        municipality_code, municipality_name
    )
    provider = Provider(
        prefecture_code=prefecture,
        municipality_code=municipality,
        municipality_name=municipality_name,
        name_kana=validate_kana(name_kana),
        code=code,
        kind=kind,
        name_ja=name_ja.strip(),
        name_en=name_en.strip(),
        terms_ja=terms_ja.replace("\r\n", "\n"),
        terms_en=terms_en.replace("\r\n", "\n"),
        terms_version=1,
        number_rule=rule,
        counter_settings=parse_counter_settings(counter_settings, rule),
    )
    set_search_keys(provider)
    if s.scalar(select(Provider.id).where(Provider.code == code)) is not None:
        raise _taken()
    s.add(provider)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise _taken() from None
    return provider


def _taken() -> ProviderError:
    return ProviderError(
        "code", "このコードはすでに使われています。", "This code is already in use."
    )


def update_provider(
    s: Session,
    provider: Provider,
    *,
    name_ja: str | None = None,
    name_en: str | None = None,
    number_rule_settings: Mapping[str, Any] | None = None,
    counter_settings: Mapping[str, Any] | None = None,
    kind: str | None = None,
    place: tuple[str, str] | None = None,
    name_kana: str | None = None,
) -> Provider:
    """Edit names, reading, place, kind, number rule and counter settings (the code does
    not change; a library's kind stays a library, whose code is an ISIL)."""
    if kind is not None and kind != provider.kind:
        if kind not in ProviderKind.ALL:
            raise ProviderError(
                "kind", "施設の種類が正しくありません。", "Unknown kind of provider."
            )
        if kind in ProviderKind.LIBRARIES:
            validate_isil(provider.code)
        elif provider.kind in ProviderKind.LIBRARIES:
            validate_code(kind, provider.code)
    where = validate_place(*place) if place is not None else None
    kana = validate_kana(name_kana) if name_kana is not None else None
    rule = number_rule(number_rule_settings) if number_rule_settings is not None else None
    effective_rule = rule if rule is not None else provider.number_rule
    counter = (
        parse_counter_settings(counter_settings, effective_rule)
        if counter_settings is not None
        else parse_counter_settings(provider.counter_settings, effective_rule)
    )
    if name_ja is not None:
        if not name_ja.strip():
            raise ProviderError("name_ja", "名称を入力してください。", "Please enter the name.")
        provider.name_ja = name_ja.strip()
    if name_en is not None:
        provider.name_en = name_en.strip()
    if rule is not None:
        # Numbers already linked stay as they are: a stricter rule applies to new links.
        provider.number_rule = rule
    provider.counter_settings = counter
    if kind is not None:
        provider.kind = kind
    if where is not None:
        provider.prefecture_code, provider.municipality_code, provider.municipality_name = where
    if kana is not None:
        provider.name_kana = kana
    set_search_keys(provider)
    s.commit()
    return provider


def update_terms(s: Session, provider: Provider, terms_ja: str, terms_en: str) -> bool:
    """Replace the terms; a real change bumps the version so citizens accept again."""
    normalized = (terms_ja.replace("\r\n", "\n"), terms_en.replace("\r\n", "\n"))
    if normalized == (provider.terms_ja, provider.terms_en):
        return False
    provider.terms_ja, provider.terms_en = normalized
    provider.terms_version += 1
    s.commit()
    return True


def get_provider(s: Session, provider_id: int) -> Provider | None:
    """The provider with this id, or None."""
    return s.get(Provider, provider_id)


def page_providers(
    s: Session, within: int | ColumnElement[bool] | None, query: str, page: int
) -> Page:
    """A page of providers by code (only those `within` a condition, e.g. an admin's
    scope, or only one id: a provider admin's own) whose name, reading, English name or
    code contains `query` (any way it is typed)."""
    stmt = select(Provider).order_by(Provider.code)
    if isinstance(within, int):
        stmt = stmt.where(Provider.id == within)
    elif within is not None:
        stmt = stmt.where(within)
    key = search_key(query)[:QUERY_LENGTH]
    if key:
        stmt = stmt.where(Provider.search_text.like(contains(key), escape="\\"))
    return paginate(s, stmt, page)


def list_providers(s: Session, only_id: int | None = None) -> list[Provider]:
    """Providers by code (only one when `only_id` is given: a provider admin's own)."""
    stmt = select(Provider).order_by(Provider.code)
    if only_id is not None:
        stmt = stmt.where(Provider.id == only_id)
    return list(s.scalars(stmt))
