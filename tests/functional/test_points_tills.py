"""Merchant staff open their till from /points/terminal/tills: only their merchant's tills
are listed (with the reader's presence), each opens with a CSRF-protected POST; another
merchant's till is refused and changes nothing; no till, a clear message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webapp import create_app, db
from webapp.demo_data import ensure_providers
from webapp.points import admin as points_admin
from webapp.points.demo import build_city
from webapp.points.models import MerchantCategory
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import get_registry, services
from webapp.terminals.models import BridgeDevice, TerminalKind, utcnow

PASSWORD = "correct horse battery"
TILLS = "/points/terminal/tills"


@dataclass(frozen=True)
class Shops:
    """Two museum tills (reader online, reader offline), one shop till, a kiosk."""

    app: Flask
    museum_till: int
    museum_till_2: int
    shop_till: int
    shop: int


@pytest.fixture
def shops(tmp_path: Path) -> Shops:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
            "BRIDGE_FLUSH_INTERVAL": 600,  # "online" = seen within 30 minutes here
        }
    )
    db.create_all(app)
    with app.app_context(), db.new_session() as s:
        demo = ensure_providers(s)
        city = build_city(s)
        shop = points_admin.create_merchant(
            s, city.muni.id, "SHOP1", "駅前商店", MerchantCategory.SHOP
        )
        cafe = points_admin.create_merchant(
            s, city.muni.id, "CAFE1", "駅前カフェ", MerchantCategory.SHOP
        )
        for login, merchant in (
            ("museumstaff", city.museum.id),
            ("shopstaff", shop.id),
            ("cafestaff", cafe.id),
        ):
            staff_services.create_staff(
                s, login, PASSWORD, Role.MERCHANT_STAFF, merchant_id=merchant
            )
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
        staff_services.create_staff(s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.museum.id)
        staff_services.create_staff(s, "clerk", PASSWORD, Role.COUNTER_STAFF, demo.museum.id)

        def till(name: str, merchant: int) -> int:
            return services.create_terminal(
                s, demo.museum.id, TerminalKind.MERCHANT, name, merchant_id=merchant
            ).id

        ids = (
            till("美術館レジ1", city.museum.id),
            till("美術館レジ2", city.museum.id),
            till("駅前レジ", shop.id),
        )
        services.create_terminal(s, demo.museum.id, TerminalKind.KIOSK, "Kiosk")
        now = utcnow()
        # The rows name this app's own worker: a bridge is online only while the worker
        # that holds it answers.
        worker = get_registry(app).worker_id
        for n, (terminal, seen) in enumerate(((ids[0], now), (ids[1], now - timedelta(hours=1)))):
            s.add(
                BridgeDevice(
                    id=f"brg_{n}",
                    terminal_id=terminal,
                    auth_public_key="a",
                    seal_public_key="s",
                    paired_at=now,
                    last_seen_at=seen,
                    connected_worker=worker,
                )
            )
        s.commit()
        return Shops(app, *ids, shop.id)


def token(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found
    return found.group(1)


def sign_in(shops: Shops, login: str) -> tuple[FlaskClient, str]:
    """A signed-in client and a CSRF token of its session."""
    client = shops.app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    signed = client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token(page)}
    )
    assert signed.status_code == 302
    return client, token(client.get("/staff/").get_data(as_text=True))


def opens(terminal: int) -> str:
    return f'action="/points/terminal/open/{terminal}"'


def test_the_list_shows_only_the_merchants_own_tills(shops: Shops) -> None:
    client, _ = sign_in(shops, "museumstaff")
    page = client.get(f"{TILLS}?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "美術館レジ1" in html and "美術館レジ2" in html
    assert opens(shops.museum_till) in html and opens(shops.museum_till_2) in html
    assert "駅前レジ" not in html and opens(shops.shop_till) not in html
    assert "Kiosk" not in html
    # Reader presence: the first till's bridge was seen just now, the second's an hour ago.
    first = html[html.index("美術館レジ1") : html.index("美術館レジ2")]
    second = html[html.index("美術館レジ2") :]
    assert "Card reader connected" in first
    assert "Card reader offline" in second and "Card reader connected" not in second
    assert html.count('name="csrf_token"') >= 2


def test_the_list_is_in_japanese_by_default(shops: Shops) -> None:
    client, _ = sign_in(shops, "museumstaff")
    html = client.get(TILLS).get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert "レジを開く" in html and "このレジを開く" in html and "カードリーダー接続中" in html


def test_the_menus_lead_merchant_staff_to_their_tills(shops: Shops) -> None:
    client, _ = sign_in(shops, "museumstaff")
    for path in ("/staff/", "/points/merchant/settlement"):
        assert f'href="{TILLS}"' in client.get(path).get_data(as_text=True), path
    clerk, _ = sign_in(shops, "clerk")
    assert f'href="{TILLS}"' not in clerk.get("/staff/").get_data(as_text=True)


@pytest.mark.parametrize("login", ["clerk", "museumadmin", "root"])
def test_other_roles_see_no_tills(shops: Shops, login: str) -> None:
    client, csrf = sign_in(shops, login)
    page = client.get(TILLS)
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert "美術館レジ" not in html and "駅前レジ" not in html
    opened = client.post(f"/points/terminal/open/{shops.museum_till}", data={"csrf_token": csrf})
    assert opened.status_code == 403


def test_signed_out_goes_to_sign_in(shops: Shops) -> None:
    answer = shops.app.test_client().get(TILLS)
    assert answer.status_code == 302 and "/staff/login" in answer.headers["Location"]


def test_open_from_the_list(shops: Shops) -> None:
    client, csrf = sign_in(shops, "museumstaff")
    # No till open yet: the terminal page sends the staff member to the list.
    first = client.get("/points/terminal/")
    assert first.status_code == 302 and first.headers["Location"].endswith(TILLS)
    opened = client.post(f"/points/terminal/open/{shops.museum_till_2}", data={"csrf_token": csrf})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/points/terminal/")
    page = client.get("/points/terminal/?lang=en").get_data(as_text=True)
    assert "美術館レジ2" in page and "市立美術館" in page
    assert f'href="{TILLS}">Other tills' in page  # two tills: switching is offered
    listing = client.get(f"{TILLS}?lang=en").get_data(as_text=True)
    mine = listing[listing.index("美術館レジ2") :]
    assert (
        "Open in this tab" in mine and "Open in this tab" not in listing[: len(listing) - len(mine)]
    )


def test_opening_another_merchants_till_is_refused_and_changes_nothing(shops: Shops) -> None:
    client, csrf = sign_in(shops, "museumstaff")
    client.post(f"/points/terminal/open/{shops.museum_till}", data={"csrf_token": csrf})
    with client.session_transaction() as session:
        before = dict(session)
    refused = client.post(f"/points/terminal/open/{shops.shop_till}", data={"csrf_token": csrf})
    assert refused.status_code == 404  # as if another merchant's till did not exist
    with client.session_transaction() as session:
        assert dict(session) == before
    page = client.get("/points/terminal/")
    assert page.status_code == 200
    assert "美術館レジ1" in page.get_data(as_text=True)


def test_opening_needs_the_csrf_token(shops: Shops) -> None:
    client, _ = sign_in(shops, "museumstaff")
    assert client.post(f"/points/terminal/open/{shops.museum_till}").status_code == 400
    forged = client.post(
        f"/points/terminal/open/{shops.museum_till}", data={"csrf_token": "forged"}
    )
    assert forged.status_code == 400
    with client.session_transaction() as session:
        assert "points_terminal_id" not in session
    assert client.get("/points/terminal/").status_code == 302  # still no till open


def test_one_till_opens_at_once(shops: Shops) -> None:
    client, _ = sign_in(shops, "shopstaff")
    answer = client.get(TILLS)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/points/terminal/")
    page = client.get("/points/terminal/?lang=en").get_data(as_text=True)
    assert "駅前レジ" in page and "Other tills" not in page


def test_no_till_says_to_ask_the_administrator(shops: Shops) -> None:
    client, _ = sign_in(shops, "cafestaff")
    page = client.get(f"{TILLS}?lang=en")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Your shop has no till yet. Ask your administrator" in html
    assert "/points/terminal/open/" not in html
    assert "お店のレジがまだありません" in client.get(f"{TILLS}?lang=ja").get_data(as_text=True)


def test_a_till_moved_away_shows_why_and_the_tills_left(shops: Shops) -> None:
    client, csrf = sign_in(shops, "museumstaff")
    client.post(f"/points/terminal/open/{shops.museum_till}", data={"csrf_token": csrf})
    with shops.app.app_context(), db.new_session() as s:
        services.set_merchant(s, shops.museum_till, shops.shop)
    lost = client.get("/points/terminal/?lang=en")
    assert lost.status_code == 403
    html = lost.get_data(as_text=True)
    assert "no longer open to you" in html
    assert opens(shops.museum_till_2) in html and opens(shops.museum_till) not in html
