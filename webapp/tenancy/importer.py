"""Providers by CSV upload, in the shape of the NDL's ISIL list: every row checked first,
then all added in one transaction, or none (as the grant CSV: webapp/points/grant_csv.py).

Columns (a header line is required; English or Japanese names, any order):

    isil / ISIL            the ISIL (JP- and 7 digits) or, for a facility that is not a
                           library, the code the municipality gives it
    name / 名称            the name
    kana / よみ            its reading, in hiragana or katakana
    prefecture / 都道府県  the prefecture: its name (東京都), 2 digits (13) or its code
    municipality_code / 団体コード   the 6-digit 全国地方公共団体コード with check digit
    kind / 種別            library, university_library, museum... or 公共図書館, 大学図書館...
    municipality / 市区町村名   optional: the municipality's name (else the registered
                           municipality's, or the prefecture's for a prefectural facility)

UTF-8 with or without BOM, or Shift_JIS (CP932) as Excel writes it. A bad row is
reported with its line number; no row of a rejected file is added. A municipal
administrator's file may hold only its own municipality's rows: a row of another
municipality is an error on that line.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..places import codes
from ..points.models import Municipality, table
from ..providers import services as provider_services
from ..providers.models import Provider, ProviderKind

MAX_BYTES = 2 * 1024 * 1024  # bounds memory per upload; the NDL's whole list is ~1 MB
MAX_ROWS = 10_000  # one transaction; a country has ~5,000 providers
MAX_ERRORS = 100  # a file full of errors is reported in part, not in full
NAME_MAX = 200

_HEADERS = {
    "isil": "isil",
    "code": "isil",
    "コード": "isil",
    "name": "name",
    "名称": "name",
    "図書館名": "name",
    "施設名": "name",
    "kana": "kana",
    "reading": "kana",
    "よみ": "kana",
    "ヨミ": "kana",
    "読み": "kana",
    "よみがな": "kana",
    "prefecture": "prefecture",
    "都道府県": "prefecture",
    "municipality_code": "municipality_code",
    "municipality code": "municipality_code",
    "団体コード": "municipality_code",
    "地方公共団体コード": "municipality_code",
    "市区町村コード": "municipality_code",
    "kind": "kind",
    "種別": "kind",
    "municipality": "municipality",
    "市区町村名": "municipality",
    "市区町村": "municipality",
}
REQUIRED = ("isil", "name", "kana", "prefecture", "municipality_code", "kind")
KIND_NAMES = {
    "公共図書館": ProviderKind.LIBRARY,
    "図書館": ProviderKind.LIBRARY,
    "大学図書館": ProviderKind.UNIVERSITY_LIBRARY,
    "博物館": ProviderKind.MUSEUM,
    "美術館": ProviderKind.MUSEUM,
    "スポーツ施設": ProviderKind.SPORTS,
    "駐輪場": ProviderKind.BIKE_PARK,
    "講座": ProviderKind.LECTURE,
    "市民広場": ProviderKind.COMMUNITY_PLAZA,
    "商店街": ProviderKind.SHOPPING_STREET,
    "その他": ProviderKind.OTHER,
}


@dataclass(frozen=True)
class LineError:
    """A refused line: its number in the file, the column, and why (ja and en)."""

    line: int
    field: str
    message_ja: str
    message_en: str

    def message(self, locale: str) -> str:
        """The message in `locale` ('ja' or 'en')."""
        return self.message_en if str(locale).startswith("en") else self.message_ja


class ImportRejected(ValueError):
    """The file was refused; `errors` lists each bad line (nothing was added)."""

    def __init__(self, errors: list[LineError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


@dataclass
class ImportResult:
    """What an accepted file added: the providers (as inserted; not in the session), and
    how many per municipality code."""

    providers: list[Provider] = field(default_factory=list)
    per_municipality: dict[str, int] = field(default_factory=dict)


def _whole(field_: str, ja: str, en: str, line: int = 1) -> ImportRejected:
    return ImportRejected([LineError(line, field_, ja, en)])


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (a BOM dropped) or else Shift_JIS (CP932)."""
    if len(data) > MAX_BYTES:
        raise _whole(
            "file",
            f"ファイルが大きすぎます（{MAX_BYTES // 1024 // 1024} MBまで）。",
            f"The file is too large (at most {MAX_BYTES // 1024 // 1024} MB).",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp932")
        except UnicodeDecodeError:
            raise _whole(
                "file",
                "文字コードはUTF-8またはShift_JISにしてください。",
                "The file must be UTF-8 or Shift_JIS text.",
            ) from None


@dataclass(frozen=True)
class Row:
    """One checked row, ready to add."""

    line: int
    code: str
    kind: str
    name: str
    kana: str
    prefecture: str
    municipality_code: str
    municipality_name: str


def _header(cells: list[str]) -> list[str | None]:
    names = [
        _HEADERS.get(unicodedata.normalize("NFKC", c).strip().lower().replace("_", " "))
        or _HEADERS.get(unicodedata.normalize("NFKC", c).strip().lower())
        for c in cells
    ]
    missing = [r for r in REQUIRED if r not in names]
    if missing or len({n for n in names if n}) != len([n for n in names if n]):
        raise _whole(
            "header",
            "1行目は見出し「ISIL,名称,よみ,都道府県,団体コード,種別」にしてください"
            f"（足りない列: {', '.join(missing) or 'なし'}、重複した列は不可）。",
            "The first line is the header isil,name,kana,prefecture,municipality_code,kind"
            f" (missing: {', '.join(missing) or 'none'}; no column twice).",
        )
    return names


def _prefecture(raw: str) -> str | None:
    """The 2-digit prefecture number of a name (東京都, 東京), a number (13) or a code."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.isascii() and text.isdigit():
        if len(text) in (1, 2):
            return text.zfill(2) if text.zfill(2) in codes.PREFECTURES else None
        if len(text) == 6:
            return text[:2] if text[:2] in codes.PREFECTURES else None
        return None
    for number, (name, _reading) in codes.PREFECTURES.items():
        if text and text in (name, name[:-1] if name[-1] in "都府県" else name):
            return number
    return None


def _kind(raw: str) -> str | None:
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.lower() in ProviderKind.ALL:
        return text.lower()
    return KIND_NAMES.get(text)


def parse(
    s: Session, data: bytes, *, only_municipality: str | None = None
) -> tuple[list[Row], list[LineError]]:
    """Rows and per-line errors (the database is read for names and duplicates only).

    `only_municipality`: a municipal administrator's own code; rows of another are errors.
    """
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _whole("file", f"CSVとして読めません: {exc}", f"Not a CSV file: {exc}") from None
    if header is None:
        raise _whole("file", "ファイルが空です。", "The file is empty.")
    names = _header(header)
    registered = {m.code: m.name for m in s.scalars(select(Municipality))}
    rows: list[Row] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}

    def bad(line: int, field_: str, ja: str, en: str) -> None:
        errors.append(LineError(line, field_, ja, en))

    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) + len(errors) >= MAX_ROWS:
                raise _whole(
                    "file",
                    f"行が多すぎます（{MAX_ROWS}行まで）。",
                    f"Too many rows (at most {MAX_ROWS}).",
                    line,
                )
            if len(errors) >= MAX_ERRORS:
                break
            if len(record) != len(names):
                bad(
                    line,
                    "file",
                    f"列の数が{len(record)}です（見出しは{len(names)}列）。",
                    f"{len(record)} columns (the header has {len(names)}).",
                )
                continue
            v = {n: c.strip() for n, c in zip(names, record, strict=True) if n}
            row = _row(line, v, registered, only_municipality, seen, bad)
            if row is not None:
                rows.append(row)
                seen[row.code] = line
    except csv.Error as exc:
        bad(reader.line_num, "file", f"CSVとして読めません: {exc}", f"Not CSV: {exc}")
    if rows:
        taken = set()
        codes_ = [r.code for r in rows]
        for i in range(0, len(codes_), 500):
            taken |= set(
                s.scalars(select(Provider.code).where(Provider.code.in_(codes_[i : i + 500])))
            )
        for r in rows:
            if r.code in taken:
                bad(
                    r.line,
                    "isil",
                    f"{r.code} はすでに登録されています。",
                    f"{r.code} is already registered.",
                )
    if not rows and not errors:
        bad(1, "file", "データの行がありません。", "The file has no rows.")
    errors.sort(key=lambda e: e.line)
    return rows, errors[:MAX_ERRORS]


def _row(
    line: int,
    v: dict[str, str],
    registered: dict[str, str],
    only: str | None,
    seen: dict[str, int],
    bad: object,
) -> Row | None:
    report = bad  # (line, field, ja, en)
    assert callable(report)  # noqa: S101
    kind = _kind(v["kind"])
    if kind is None:
        report(
            line,
            "kind",
            f"種別「{v['kind']}」は使えません（{', '.join(ProviderKind.ALL)}）。",
            f"Unknown kind {v['kind']!r} (one of {', '.join(ProviderKind.ALL)}).",
        )
        return None
    try:
        code = provider_services.validate_code(kind, v["isil"])
    except provider_services.ProviderError as exc:
        report(line, "isil", exc.message_ja, exc.message_en)
        return None
    if code in seen:
        report(
            line,
            "isil",
            f"{code} はこのファイルの{seen[code]}行目にもあります。",
            f"{code} is also on line {seen[code]} of this file.",
        )
        return None
    name = " ".join(v["name"].split())
    if not name or len(name) > NAME_MAX:
        report(line, "name", "名称を入力してください（200文字まで）。", "A name (up to 200).")
        return None
    try:
        kana = provider_services.validate_kana(v["kana"])
    except provider_services.ProviderError as exc:
        report(line, "kana", exc.message_ja, exc.message_en)
        return None
    if not kana:
        report(line, "kana", "よみがなを入力してください。", "Please give the reading (kana).")
        return None
    try:
        place = codes.validate(v["municipality_code"])
    except codes.CodeError as exc:
        ja, en = codes.MESSAGES[exc.reason]
        report(line, "municipality_code", ja, en)
        return None
    prefecture = _prefecture(v["prefecture"])
    if prefecture is None:
        report(
            line,
            "prefecture",
            f"都道府県「{v['prefecture']}」がわかりません。",
            f"Unknown prefecture {v['prefecture']!r}.",
        )
        return None
    if prefecture != place.code[:2]:
        report(
            line,
            "prefecture",
            f"都道府県（{codes.prefecture_name(prefecture)}）と団体コード {place.code}"
            f"（{codes.prefecture_name(place.code)}）が合いません。",
            f"The prefecture ({prefecture}) does not match the code {place.code}.",
        )
        return None
    if only is not None and place.code != only:
        report(
            line,
            "municipality_code",
            f"団体コード {place.code} はあなたの自治体（{only}）ではありません。",
            f"Code {place.code} is not your municipality ({only}).",
        )
        return None
    town = (
        v.get("municipality", "").strip()
        or registered.get(place.code, "")
        or (codes.prefecture_name(place.code) if place.is_prefecture else "")
    )
    if not town:
        report(
            line,
            "municipality",
            f"団体コード {place.code} の自治体は未登録です。「市区町村名」の列を加えてください。",
            f"Municipality {place.code} is not registered: add a municipality column.",
        )
        return None
    return Row(line, code, kind, name, kana, place.prefecture, place.code, town[:100])


def import_file(s: Session, data: bytes, *, only_municipality: str | None = None) -> ImportResult:
    """Check every row, then add all of them in one transaction (ImportRejected: none)."""
    rows, errors = parse(s, data, only_municipality=only_municipality)
    if errors:
        raise ImportRejected(errors)
    rule = provider_services.number_rule(None)
    counter = provider_services.parse_counter_settings(None, rule)
    result = ImportResult()
    for r in rows:
        provider = Provider(
            code=r.code,
            kind=r.kind,
            name_ja=r.name,
            name_en="",
            name_kana=r.kana,
            prefecture_code=r.prefecture,
            municipality_code=r.municipality_code,
            municipality_name=r.municipality_name,
            terms_ja="",
            terms_en="",
            terms_version=1,
            number_rule=dict(rule),
            counter_settings=dict(counter),
        )
        provider_services.set_search_keys(provider)
        result.providers.append(provider)
        result.per_municipality[r.municipality_code] = (
            result.per_municipality.get(r.municipality_code, 0) + 1
        )
    columns = [c.key for c in Provider.__table__.columns if c.key not in ("id", "created_at")]
    try:
        # One executemany of Core rows (no unit of work per object): 5,000 rows are
        # checked and added in 2-3 s on PostgreSQL (bench/tenancy_import.py).
        s.execute(
            table(Provider).insert(),
            [{k: getattr(p, k) for k in columns} for p in result.providers],
        )
        s.flush()
    except IntegrityError:
        s.rollback()  # a provider with one of these codes was added meanwhile
        raise _whole(
            "isil",
            "同じコードの施設が同時に登録されました。もう一度お試しください。",
            "A provider with one of these codes was added meanwhile: please try again.",
        ) from None
    return result
