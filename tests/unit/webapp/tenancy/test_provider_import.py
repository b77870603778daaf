"""Providers by CSV (the NDL ISIL list's shape): all rows or none, errors by line number."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp import create_app, db
from webapp.points.admin import create_municipality
from webapp.providers import services as provider_services
from webapp.providers.models import Provider, ProviderKind
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.tenancy import importer
from webapp.tenancy.models import AdminAuditEntry

PASSWORD = "correct horse battery"
HEADER = "isil,name,kana,prefecture,municipality_code,kind\r\n"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'import.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    db.create_all(app)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context(), db.new_session() as s:
        chiyoda = create_municipality(s, "131016", "千代田区")
        create_municipality(s, "271004", "大阪市")
        staff_services.create_staff(
            s, "chiyoda.admin", PASSWORD, Role.MUNICIPAL_ADMIN, municipality_id=chiyoda.id
        )
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
        provider_services.create_provider(
            s, code="JP-1000001", kind=ProviderKind.LIBRARY, name_ja="既存図書館"
        )
    return app


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    session: Session = app.extensions["db_sessionmaker"]()
    yield session
    session.close()


def count(s: Session) -> int:
    s.rollback()
    return int(s.scalar(select(func.count()).select_from(Provider)) or 0)


GOOD = (
    HEADER
    + "JP-1310001,千代田区立千代田図書館,チヨダクリツチヨダトショカン,東京都,131016,library\r\n"
    + "JP-1310002,日比谷図書文化館,ひびやとしょぶんかかん,13,131016,公共図書館\r\n"
    + "chiyoda-museum,千代田区立美術館,ﾁﾖﾀﾞｸﾘﾂﾋﾞｼﾞｭﾂｶﾝ,東京都,131016,museum\r\n"
    + "JP-2710001,大阪市立中央図書館,おおさかしりつちゅうおうとしょかん,大阪府,271004,library\r\n"
)


def test_a_good_file_adds_every_row_with_its_place_and_search_keys(s: Session) -> None:
    before = count(s)
    result = importer.import_file(s, ("\ufeff" + GOOD).encode("utf-8"))
    s.commit()
    assert len(result.providers) == 4 and count(s) == before + 4
    assert result.per_municipality == {"131016": 3, "271004": 1}
    row = s.scalar(select(Provider).where(Provider.code == "JP-1310002"))
    assert row is not None
    assert (row.kind, row.prefecture_code, row.municipality_code) == ("library", "130001", "131016")
    assert row.municipality_name == "千代田区"  # the registered municipality's name
    museum = s.scalar(select(Provider).where(Provider.code == "chiyoda-museum"))
    assert museum is not None and museum.kind == ProviderKind.MUSEUM
    assert "ちよだくりつびじゅつかん" in museum.search_text  # half-width katakana folded


def test_shift_jis_and_japanese_headers_are_read(s: Session) -> None:
    text = (
        "ISIL,名称,よみ,都道府県,団体コード,種別\r\n"
        "JP-1310003,千代田区立四番町図書館,よんばんちょうとしょかん,東京都,131016,公共図書館\r\n"
    )
    result = importer.import_file(s, text.encode("cp932"))
    s.commit()
    assert [p.name_ja for p in result.providers] == ["千代田区立四番町図書館"]


BAD = (
    HEADER
    + "JP-1310001,良い行,よいぎょう,東京都,131016,library\r\n"  # line 2: fine
    + "JP-13100,短いISIL,みじかい,東京都,131016,library\r\n"  # 3: ISIL format
    + "JP-1310004,検査数字,けんさすうじ,東京都,131017,library\r\n"  # 4: check digit
    + "JP-1310005,県違い,けんちがい,大阪府,131016,library\r\n"  # 5: prefecture
    + "JP-1310006,種別違い,しゅべつ,東京都,131016,zoo\r\n"  # 6: kind
    + "JP-1310007,読み違い,漢字です,東京都,131016,library\r\n"  # 7: kana
    + "JP-1310001,重複,じゅうふく,東京都,131016,library\r\n"  # 8: also on line 2
    + "JP-1000001,既存,きぞん,東京都,131016,library\r\n"  # 9: already registered
    + "JP-1310008,列不足,れつぶそく,東京都,131016\r\n"  # 10: 5 columns
    + "JP-1310009,未登録,みとうろく,北海道,011002,library\r\n"  # 11: unregistered town
    + "JP-1310010,よみなし,,東京都,131016,library\r\n"  # 12: no reading
)


def test_a_bad_file_adds_nothing_and_names_each_line(s: Session) -> None:
    before = count(s)
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(s, BAD.encode("utf-8"))
    s.rollback()
    assert count(s) == before
    found = {(e.line, e.field) for e in caught.value.errors}
    assert found == {
        (3, "isil"),
        (4, "municipality_code"),
        (5, "prefecture"),
        (6, "kind"),
        (7, "kana"),
        (8, "isil"),
        (9, "isil"),
        (10, "file"),
        (11, "municipality"),
        (12, "kana"),
    }
    dup = next(e for e in caught.value.errors if e.line == 8)
    assert "2" in dup.message_en and "line 2" in dup.message_en


def test_a_municipal_admins_file_may_hold_only_its_own_rows(s: Session) -> None:
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(s, GOOD.encode("utf-8"), only_municipality="131016")
    s.rollback()
    assert [(e.line, e.field) for e in caught.value.errors] == [(5, "municipality_code")]
    assert s.scalar(select(Provider).where(Provider.code == "JP-1310001")) is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "file"),
        (b"isil,name\r\nJP-1,x\r\n", "header"),
        (HEADER.encode(), "file"),  # no rows
        (b"\xff\xfe\xfa" * 10, "file"),  # neither UTF-8 nor Shift_JIS
        (b"x" * (importer.MAX_BYTES + 1), "file"),
    ],
    ids=["empty", "header", "no-rows", "encoding", "too-large"],
)
def test_a_file_refused_as_a_whole(s: Session, data: bytes, field: str) -> None:
    with pytest.raises(importer.ImportRejected) as caught:
        importer.import_file(s, data)
    assert caught.value.errors[0].field == field


def _login(app: Flask, login: str) -> object:
    client = app.test_client()
    assert (
        client.post("/staff/login", data={"login": login, "password": PASSWORD}).status_code == 302
    )
    return client


def test_the_page_imports_for_a_municipal_admin_and_lists_a_bad_line(
    app: Flask, s: Session
) -> None:
    client = _login(app, "chiyoda.admin")
    assert client.get("/admin/providers/import").status_code == 200  # type: ignore[attr-defined]
    before = count(s)
    reply = client.post(  # type: ignore[attr-defined]
        "/admin/providers/import",
        data={"file": (io.BytesIO(GOOD.encode()), "list.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 400
    page = reply.get_data(as_text=True)
    assert 'class="num">5</td>' in page and count(s) == before
    own = HEADER + "JP-1310001,千代田図書館,ちよだとしょかん,東京都,131016,library\r\n"
    reply = client.post(  # type: ignore[attr-defined]
        "/admin/providers/import",
        data={"file": (io.BytesIO(own.encode("cp932")), "list.csv")},
        content_type="multipart/form-data",
    )
    assert reply.status_code == 200 and count(s) == before + 1
    entry = s.scalar(select(AdminAuditEntry).where(AdminAuditEntry.action == "providers.import"))
    assert entry is not None and entry.actor == "chiyoda.admin" and entry.changes == {"rows": 1}
    listing = client.get("/admin/providers/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "JP-1310001" in listing and "JP-1000001" not in listing  # its own only
