"""Admin terminals page: a shop till is created with its merchant, shows it, and can be
moved to another merchant; the till then lets in only the new merchant's staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from webapp import create_app, db
from webapp.demo_data import DEMO_PLACE, ensure_providers
from webapp.points import admin as points_admin
from webapp.points.demo import build_city
from webapp.points.models import MerchantCategory
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services
from webapp.terminals.models import Terminal, TerminalKind

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class World:
    """The demo providers, a city with two merchants, and their staff."""

    app: Flask
    museum_provider: int
    library_provider: int
    museum: int  # merchant ids
    shop: int


@pytest.fixture
def world(tmp_path: Path) -> World:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    db.create_all(app)
    with app.app_context(), db.new_session() as s:
        demo = ensure_providers(s)
        # The city the demo providers are in: a provider's tills take its own town's merchants.
        city = build_city(s, DEMO_PLACE[0])
        shop = points_admin.create_merchant(
            s, city.muni.id, "SHOP1", "駅前商店", MerchantCategory.SHOP
        )
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
        staff_services.create_staff(s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.museum.id)
        staff_services.create_staff(s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.library.id)
        staff_services.create_staff(s, "clerk", PASSWORD, Role.COUNTER_STAFF, demo.museum.id)
        for login, merchant in (("museumstaff", city.museum.id), ("shopstaff", shop.id)):
            staff_services.create_staff(
                s, login, PASSWORD, Role.MERCHANT_STAFF, merchant_id=merchant
            )
        return World(app, demo.museum.id, demo.library.id, city.museum.id, shop.id)


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert found
    return found.group(1)


def sign_in(client: FlaskClient, login: str, after: str = "/admin/terminals/") -> str:
    """Sign in; the CSRF token of the page `after`."""
    page = client.get("/staff/login").get_data(as_text=True)
    signed = client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token(page)}
    )
    assert signed.status_code == 302
    return token(client.get(after).get_data(as_text=True))


def terminals(world: World) -> list[tuple[str, str, int | None]]:
    with world.app.app_context(), db.new_session() as s:
        rows = s.scalars(select(Terminal).order_by(Terminal.id))
        return [(t.name, t.kind, t.merchant_id) for t in rows]


def create(client: FlaskClient, csrf: str, world: World, **form: object) -> tuple[int, str]:
    data = {"provider_id": world.museum_provider, "csrf_token": csrf, **form}
    made = client.post("/admin/terminals/", data=data)
    return made.status_code, made.get_data(as_text=True)


def add_till(world: World, merchant: int, name: str = "Museum till") -> int:
    with world.app.app_context(), db.new_session() as s:
        return services.create_terminal(
            s, world.museum_provider, TerminalKind.MERCHANT, name, merchant_id=merchant
        ).id


def test_the_page_offers_the_merchants(world: World) -> None:
    client = world.app.test_client()
    sign_in(client, "museumadmin")
    page = client.get("/admin/terminals/?lang=en").get_data(as_text=True)
    assert 'name="merchant_id"' in page
    assert f'<option value="{world.museum}">市立美術館 (MUSEUM1' in page
    assert f'<option value="{world.shop}">駅前商店 (SHOP1' in page


def test_an_admin_creates_a_till_with_its_merchant(world: World) -> None:
    client = world.app.test_client()
    csrf = sign_in(client, "museumadmin")
    status, _ = create(
        client, csrf, world, kind="merchant", name="Shop till 1", merchant_id=world.shop
    )
    assert status == 302
    assert terminals(world) == [("Shop till 1", "merchant", world.shop)]
    listing = client.get("/admin/terminals/?lang=en").get_data(as_text=True)
    row = listing[listing.index("Shop till 1") :]
    row = row[: row.index("</tr>")]
    assert "駅前商店" in row and "SHOP1" in row and f"テスト市{DEMO_PLACE[0]}" in row


@pytest.mark.parametrize(
    ("form", "message_en", "message_ja"),
    [
        (
            {"kind": "merchant", "name": "No merchant"},
            "A shop till needs its merchant",
            "加盟店レジには加盟店が必要です",
        ),
        (
            {"kind": "merchant", "name": "Ghost merchant", "merchant_id": "999999"},
            "There is no such merchant",
            "その加盟店はありません",
        ),
        (
            {"kind": "merchant", "name": "Garbled", "merchant_id": "1; DROP TABLE"},
            "There is no such merchant",
            "その加盟店はありません",
        ),
        (
            {"kind": "counter", "name": "Desk with merchant", "merchant_id": "MUSEUM"},
            "There is no such merchant",
            "その加盟店はありません",
        ),
    ],
)
def test_bad_merchant_input_is_refused_and_changes_nothing(
    world: World, form: dict[str, str], message_en: str, message_ja: str
) -> None:
    client = world.app.test_client()
    csrf = sign_in(client, "museumadmin")
    status, body = create(client, csrf, world, **form)
    assert status == 400
    assert message_ja in body  # Japanese by default
    assert terminals(world) == []
    client.get("/admin/terminals/?lang=en")
    _, body_en = create(client, csrf, world, **form)
    assert message_en in body_en
    assert f'value="{form["name"]}"' in body_en  # what was typed is kept
    assert terminals(world) == []


def test_a_counter_with_a_merchant_is_refused(world: World) -> None:
    client = world.app.test_client()
    csrf = sign_in(client, "museumadmin")
    client.get("/admin/terminals/?lang=en")
    status, body = create(client, csrf, world, kind="counter", name="Desk", merchant_id=world.shop)
    assert status == 400
    assert "Only a shop till has a merchant" in body
    assert terminals(world) == []
    assert create(client, csrf, world, kind="counter", name="Desk", merchant_id="")[0] == 302
    assert terminals(world) == [("Desk", "counter", None)]


def test_creating_needs_the_csrf_token(world: World) -> None:
    client = world.app.test_client()
    sign_in(client, "museumadmin")
    made = client.post(
        "/admin/terminals/",
        data={
            "provider_id": world.museum_provider,
            "kind": "merchant",
            "name": "Forged",
            "merchant_id": world.shop,
        },
    )
    assert made.status_code == 400
    assert terminals(world) == []


def test_changing_the_merchant_moves_the_till(world: World) -> None:
    till = add_till(world, world.museum)
    museum_staff = world.app.test_client()
    staff_csrf = sign_in(museum_staff, "museumstaff", after="/staff/")
    opened = museum_staff.post(f"/points/terminal/open/{till}", data={"csrf_token": staff_csrf})
    assert opened.status_code == 302
    assert museum_staff.get("/points/terminal/").status_code == 200

    admin = world.app.test_client()
    csrf = sign_in(admin, "museumadmin")
    moved = admin.post(
        f"/admin/terminals/{till}/merchant", data={"merchant_id": world.shop, "csrf_token": csrf}
    )
    assert moved.status_code == 302
    assert terminals(world) == [("Museum till", "merchant", world.shop)]
    listing = admin.get("/admin/terminals/").get_data(as_text=True)
    assert f'<option value="{world.shop}" selected>' in listing

    # The museum's staff lose the till at once, their open tab included.
    assert museum_staff.get("/points/terminal/").status_code == 403
    again = museum_staff.post(f"/points/terminal/open/{till}", data={"csrf_token": staff_csrf})
    assert again.status_code == 404
    # The shop's staff now open it.
    shop_staff = world.app.test_client()
    shop_csrf = sign_in(shop_staff, "shopstaff", after="/staff/")
    taken = shop_staff.post(f"/points/terminal/open/{till}", data={"csrf_token": shop_csrf})
    assert taken.status_code == 302
    assert shop_staff.get("/points/terminal/").status_code == 200


@pytest.mark.parametrize("merchant_id", ["", "999999", "x"])
def test_a_bad_change_is_refused_and_changes_nothing(world: World, merchant_id: str) -> None:
    till = add_till(world, world.museum)
    admin = world.app.test_client()
    csrf = sign_in(admin, "museumadmin")
    admin.get("/admin/terminals/?lang=en")
    refused = admin.post(
        f"/admin/terminals/{till}/merchant", data={"merchant_id": merchant_id, "csrf_token": csrf}
    )
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert "A shop till needs its merchant" in body or "There is no such merchant" in body
    assert terminals(world) == [("Museum till", "merchant", world.museum)]


def test_a_counter_never_gets_a_merchant(world: World) -> None:
    with world.app.app_context(), db.new_session() as s:
        desk = services.create_terminal(s, world.museum_provider, "counter", "Desk").id
    admin = world.app.test_client()
    csrf = sign_in(admin, "museumadmin")
    admin.get("/admin/terminals/?lang=en")
    refused = admin.post(
        f"/admin/terminals/{desk}/merchant", data={"merchant_id": world.shop, "csrf_token": csrf}
    )
    assert refused.status_code == 400
    assert "Only a shop till has a merchant" in refused.get_data(as_text=True)
    assert terminals(world) == [("Desk", "counter", None)]


def test_only_the_tills_admins_change_its_merchant(world: World) -> None:
    till = add_till(world, world.museum)
    other = world.app.test_client()
    other_csrf = sign_in(other, "libadmin")
    assert "Museum till" not in other.get("/admin/terminals/").get_data(as_text=True)
    moved = other.post(
        f"/admin/terminals/{till}/merchant",
        data={"merchant_id": world.shop, "csrf_token": other_csrf},
    )
    assert moved.status_code == 404
    for login in ("clerk", "museumstaff"):
        client = world.app.test_client()
        staff_csrf = sign_in(client, login, after="/staff/")
        attempt = client.post(
            f"/admin/terminals/{till}/merchant",
            data={"merchant_id": world.shop, "csrf_token": staff_csrf},
        )
        assert attempt.status_code == 403, login
    anonymous = world.app.test_client().post(
        f"/admin/terminals/{till}/merchant", data={"merchant_id": world.shop}
    )
    assert anonymous.status_code in (302, 400)
    # The platform admin may.
    root = world.app.test_client()
    root_csrf = sign_in(root, "root")
    assert (
        root.post(
            f"/admin/terminals/{till}/merchant",
            data={"merchant_id": world.shop, "csrf_token": root_csrf},
        ).status_code
        == 302
    )
    assert terminals(world) == [("Museum till", "merchant", world.shop)]


def test_a_till_without_a_merchant_says_so_and_opens_for_no_one(world: World) -> None:
    """A till from before the binding (merchant_id NULL after the migration)."""
    with world.app.app_context(), db.new_session() as s:
        s.add(Terminal(provider_id=world.museum_provider, kind="merchant", name="Old till"))
        s.commit()
        till = s.scalar(select(func.max(Terminal.id)))
    admin = world.app.test_client()
    sign_in(admin, "museumadmin")
    listing = admin.get("/admin/terminals/?lang=en").get_data(as_text=True)
    assert "Not set: no one can open this till" in listing
    staff = world.app.test_client()
    staff_csrf = sign_in(staff, "museumstaff", after="/staff/")
    opened = staff.post(f"/points/terminal/open/{till}", data={"csrf_token": staff_csrf})
    assert opened.status_code == 404


def test_a_merchant_beyond_the_select_bound_stays_selected(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more merchants than the select lists, a till's own merchant is still offered
    (and selected), so pressing "change" never moves it by accident."""
    first_only = services.merchant_choices
    monkeypatch.setattr(
        services, "merchant_choices", lambda s, within=None: first_only(s, within=within, limit=1)
    )
    till = add_till(world, world.shop)  # SHOP1 sorts after MUSEUM1: not in the list
    admin = world.app.test_client()
    sign_in(admin, "museumadmin")
    page = admin.get("/admin/terminals/").get_data(as_text=True)
    form = page[page.index(f'id="merchant-{till}"') :]
    form = form[: form.index("</select>")]
    assert f'<option value="{world.shop}" selected>' in form
    assert f'<option value="{world.museum}">' in form
