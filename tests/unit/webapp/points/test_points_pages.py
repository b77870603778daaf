"""Points staff pages: roles and scope, replayed forms, all-or-nothing CSV, settlement CSV."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.forms import csrf_token as token
from tests.support.forms import grant_key as hidden_key
from webapp import create_app, db
from webapp.points import invariants, reports, spend
from webapp.points.demo import City, build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import Transfer, TransferKind
from webapp.staff import services as staff_services
from webapp.staff.models import Role

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path: Path, directory: KnownMyKeyIds) -> Flask:
    """The fully wired app (staff, i18n, points pages) on a database file of its own."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pages.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    app.extensions["points_directory"] = directory
    db.create_all(app)
    return app


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    """A session outside any app context (an open one would share `g` with the client's
    requests: the signed-in user, the locale, the CSRF token); invariants checked after."""
    session: Session = app.extensions["db_sessionmaker"]()
    yield session
    session.rollback()
    assert invariants.violations(session) == {}
    session.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def other(s: Session, world: City, t0: datetime) -> City:
    """A second city, 012025, with its own programs and museum."""
    return build_city(s, code="012025", partner_code="AIRLINE2", now=t0)


def login(client: FlaskClient, s: Session, name: str, role: Role, **scope: Any) -> None:
    """Create a staff account and sign the client in through the real form."""
    staff_services.create_staff(s, name, PASSWORD, role, **scope)
    page = client.get("/staff/login").get_data(as_text=True)
    reply = client.post(
        "/staff/login", data={"login": name, "password": PASSWORD, "csrf_token": token(page)}
    )
    assert reply.status_code == 302, reply.get_data(as_text=True)


def transfers(s: Session, kind: TransferKind) -> int:
    """How many transfers of `kind` the ledger holds."""
    count = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == kind.value))
    s.rollback()
    return int(count or 0)


@pytest.mark.parametrize(
    "url",
    [
        "/points/municipality",
        "/points/grants",
        "/points/grants/template.csv",
        "/points/merchant/settlement",
        "/points/merchant/settlement.csv",
        "/points/merchant/refunds",
    ],
)
def test_counter_staff_gets_403(client: FlaskClient, s: Session, world: City, url: str) -> None:
    from webapp.providers import services as provider_services
    from webapp.providers.models import ProviderKind

    provider = provider_services.create_provider(
        s, code="JP-1000001", kind=ProviderKind.LIBRARY, name_ja="図書館", name_en="Library"
    )
    login(client, s, "counter", Role.COUNTER_STAFF, provider_id=provider.id)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize(
    ("role", "work"),
    [
        (Role.POINTS_OFFICER, ("/points/municipality", "/points/grants")),
        (Role.MERCHANT_STAFF, ("/points/terminal/tills", "/points/merchant/settlement")),
    ],
)
def test_sign_in_lands_on_the_staff_home_with_the_points_pages(
    client: FlaskClient, s: Session, world: City, role: Role, work: tuple[str, ...]
) -> None:
    scope = {"municipality_id": world.muni.id, "merchant_id": world.museum.id}
    key = "municipality_id" if role is Role.POINTS_OFFICER else "merchant_id"
    login(client, s, "someone", role, **{key: scope[key]})
    reply = client.get("/staff/login")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/staff/")
    home = client.get("/staff/").get_data(as_text=True)
    for page in work:
        assert f'href="{page}"' in home
        assert client.get(page).status_code in (200, 302)  # one till: it opens at once


def test_signed_out_goes_to_login(client: FlaskClient, world: City) -> None:
    reply = client.get("/points/grants")
    assert reply.status_code == 302 and "/staff/login" in reply.headers["Location"]


def test_merchant_staff_cannot_see_officer_pages(
    client: FlaskClient, s: Session, world: City
) -> None:
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=world.museum.id)
    assert client.get("/points/grants").status_code == 403
    assert client.get("/points/merchant/settlement").status_code == 200


def test_summary_page(client: FlaskClient, s: Session, world: City) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    body = client.get("/points/municipality").get_data(as_text=True)
    assert "ポイント集計" in body and "VOL" in body and "100,000" in body


def test_grant_once_with_a_replayed_form_is_one_transfer(
    client: FlaskClient, s: Session, world: City
) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    page = client.get("/points/grants").get_data(as_text=True)
    form = {
        "csrf_token": token(page),
        "key": hidden_key(page),
        "mykey_id": "ALICE234",
        "program_id": str(world.volunteering.id),
    }
    first = client.post("/points/grants", data=form)
    again = client.post("/points/grants", data=form)
    assert first.status_code == again.status_code == 200
    assert "付与しました" in first.get_data(as_text=True)
    assert "既に付与済み" in again.get_data(as_text=True)
    assert transfers(s, TransferKind.GRANT) == 1


def test_officer_of_city_a_cannot_grant_in_city_b(
    client: FlaskClient, s: Session, world: City, other: City
) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    page = client.get("/points/grants").get_data(as_text=True)
    assert other.volunteering.name not in page or f'value="{other.volunteering.id}"' not in page
    reply = client.post(
        "/points/grants",
        data={
            "csrf_token": token(page),
            "key": hidden_key(page),
            "mykey_id": "ALICE234",
            "program_id": str(other.volunteering.id),
        },
    )
    assert reply.status_code == 400
    assert transfers(s, TransferKind.GRANT) == 0


def test_grant_error_in_english(client: FlaskClient, s: Session, world: City) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    page = client.get("/points/grants?lang=en").get_data(as_text=True)
    reply = client.post(
        "/points/grants",
        data={
            "csrf_token": token(page),
            "key": hidden_key(page),
            "mykey_id": "NOBODY99",
            "program_id": str(world.volunteering.id),
        },
    )
    body = reply.get_data(as_text=True)
    assert reply.status_code == 404 and "No such MyKey ID." in body and "Traceback" not in body
    assert transfers(s, TransferKind.GRANT) == 0


def upload(client: FlaskClient, data: bytes, lang: str = "ja") -> Any:
    """Post a grant file through the page's form."""
    page = client.get(f"/points/grants?lang={lang}").get_data(as_text=True)
    return client.post(
        "/points/grants/csv",
        data={"csrf_token": token(page), "file": (io.BytesIO(data), "grants.csv")},
        content_type="multipart/form-data",
    )


def test_csv_with_a_bad_row_at_line_3_applies_nothing(
    client: FlaskClient, s: Session, world: City
) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    data = b"mykey_id,program\r\nALICE234,VOL\r\nNOBODY99,VOL\r\nBOB23456,VOL\r\n"
    reply = upload(client, data)
    body = reply.get_data(as_text=True)
    assert reply.status_code == 400
    assert "どの行も反映していません" in body and "マイキーIDが見つかりません" in body
    assert re.search(r'<td class="num">3</td>\s*<td>マイキーIDが見つかりません', body)
    assert transfers(s, TransferKind.GRANT) == 0
    english = upload(client, data, "en").get_data(as_text=True)
    assert "No such MyKey ID." in english and "no row was applied" in english


def test_csv_applied_once(client: FlaskClient, s: Session, world: City) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    data = b"mykey_id,program\r\nALICE234,VOL\r\nBOB23456,VOL\r\n"
    assert upload(client, data).status_code == 200
    assert "既に反映済み" in upload(client, data).get_data(as_text=True)
    assert transfers(s, TransferKind.GRANT) == 2


def test_csv_template(client: FlaskClient, s: Session, world: City) -> None:
    login(client, s, "officer", Role.POINTS_OFFICER, municipality_id=world.muni.id)
    reply = client.get("/points/grants/template.csv")
    assert reply.mimetype == "text/csv"
    assert reply.get_data(as_text=True).lstrip("\ufeff").startswith("mykey_id,program")


def paid(s: Session, city: City, points: int = 300) -> int:
    """Grant ALICE 500 points and let her pay `points` at the museum; the payment's id."""
    from webapp.points import programs

    programs.grant(
        s, city.volunteering.id, "ALICE234", key="g1", directory=KnownMyKeyIds({"ALICE234"})
    )
    return spend.spend(s, city.museum.id, "ALICE234", points, key="p1").transfer_id


def test_settlement_csv_equals_the_service(client: FlaskClient, s: Session, world: City) -> None:
    paid(s, world)
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=world.museum.id)
    page = client.get("/points/merchant/settlement").get_data(as_text=True)
    assert "精算" in page
    link = re.search(r'href="(/points/merchant/settlement\.csv\?[^"]+)"', page)
    assert link
    url = link.group(1).replace("&amp;", "&")
    first = client.get(url).get_data(as_text=True)
    assert first == client.get(url).get_data(as_text=True)  # reproducible
    today = reports.utc_now().astimezone(reports.JST).date()
    start, end = today.replace(day=1), today + timedelta(days=1)
    cutoff = reports.settlement(s, world.museum.id, start, end).cutoff
    s.rollback()
    csv_url = f"/points/merchant/settlement.csv?start={start}&end={end}&cutoff={cutoff.isoformat()}"
    expected = reports.settlement_csv(
        reports.settlement(s, world.museum.id, start, end, cutoff=cutoff)
    )
    assert client.get(csv_url.replace("+", "%2B")).get_data(as_text=True) == expected
    assert ",total,1,300,0,300," in first


def test_settlement_bad_period_is_a_clear_error(
    client: FlaskClient, s: Session, world: City
) -> None:
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=world.museum.id)
    reply = client.get("/points/merchant/settlement?start=2025-05-01&end=2025-04-01&lang=en")
    assert reply.status_code == 400 and "at most 366 days apart" in reply.get_data(as_text=True)
    assert client.get("/points/merchant/settlement?start=yesterday").status_code == 400


def refund(client: FlaskClient, spend_id: int, points: int) -> Any:
    """Post the refund form of one payment."""
    page = client.get("/points/merchant/refunds").get_data(as_text=True)
    return client.post(
        "/points/merchant/refunds",
        data={
            "csrf_token": token(page),
            "key": uuid.uuid4().hex,
            "spend_id": str(spend_id),
            "points": str(points),
        },
    )


def test_refund_capped_at_what_was_spent(client: FlaskClient, s: Session, world: City) -> None:
    spend_id = paid(s, world, 300)
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=world.museum.id)
    assert f"#{spend_id}" in client.get("/points/merchant/refunds").get_data(as_text=True)
    assert refund(client, spend_id, 200).status_code == 200
    too_much = refund(client, spend_id, 200)
    assert too_much.status_code == 422 and "返金額が利用額を超えます" in too_much.get_data(
        as_text=True
    )
    assert transfers(s, TransferKind.REFUND) == 1


def test_other_merchants_payment_is_not_found(
    client: FlaskClient, s: Session, world: City, other: City
) -> None:
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=other.museum.id)
    spend_id = paid(s, world, 100)
    assert refund(client, spend_id, 50).status_code == 404
    assert f"#{spend_id}" not in client.get("/points/merchant/refunds").get_data(as_text=True)
    assert transfers(s, TransferKind.REFUND) == 0


def test_points_roles_need_their_scope(s: Session, world: City) -> None:
    with pytest.raises(staff_services.StaffError):
        staff_services.create_staff(s, "officer", PASSWORD, Role.POINTS_OFFICER)
    with pytest.raises(staff_services.StaffError):
        staff_services.create_staff(s, "shop", PASSWORD, Role.MERCHANT_STAFF, merchant_id=999)
    user = staff_services.create_staff(
        s, "shop", PASSWORD, Role.MERCHANT_STAFF, 5, merchant_id=world.museum.id
    )
    assert (user.provider_id, user.municipality_id, user.merchant_id) == (
        None,
        None,
        world.museum.id,
    )


def test_period_default_is_this_month(client: FlaskClient, s: Session, world: City) -> None:
    login(client, s, "shop", Role.MERCHANT_STAFF, merchant_id=world.museum.id)
    body = client.get("/points/merchant/settlement").get_data(as_text=True)
    first = reports.utc_now().astimezone(reports.JST).date().replace(day=1)
    assert f'value="{first.isoformat()}"' in body
    assert isinstance(first, date)
