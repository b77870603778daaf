"""Nobody outside municipality B sees or changes B's anything.

Walks EVERY admin route of the app (everything under /admin/, the officers' /points/
pages, the token-authenticated /api/v1/admin/ API, and the staff routes that open a
counter, a kiosk or a shop till in the browser), GET and POST, as each role of
municipality A (its municipal administrator, a provider admin, counter staff, a points
officer, merchant staff) and as a visitor, aimed at B's objects: B's provider, terminal,
bridge, staff account, session, program, merchant, partner. Every route with an id in
its path must answer 403 or 404 (a visitor: the sign-in page); a page without one
must not show B's names; and after every request, every row that belongs to B (every
table's rows by B's municipality, providers, terminals, staff, merchants, partners and
programs) is exactly as it was. A new admin route fails the test until it is listed in
ROUTE_ARGS below, so the walk cannot fall behind the app.

A positive control proves the walk aims at real objects: B's own municipal
administrator opens B's provider, terminal list and staff list (200).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, or_, select

from webapp import create_app, db
from webapp.db import Base
from webapp.points.demo import build_city
from webapp.providers import services as provider_services
from webapp.providers.models import Provider, ProviderKind
from webapp.sessions.models import WebSession
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser
from webapp.terminals import services as terminal_services
from webapp.terminals.models import BridgeDevice, Terminal, TerminalKind

PASSWORD = "correct horse battery"
A_CODE, A_NAME = "131016", "千代田区"
B_CODE, B_NAME = "271004", "大阪市"
B_ISIL = "JP-2700001"
# Words only B's objects carry: none may appear on a page of someone outside B.
B_MARKERS = (B_ISIL, "b-museum-1", "b.clerk", "b.admin", "b.officer", "B窓口", B_CODE, B_NAME)
PREFIXES = ("/admin/", "/points/", "/api/v1/admin/")
# Staff routes that open a terminal in the browser (a counter, a kiosk, a shop till):
# walked too, since a terminal of B opened by someone else would be B's changed.
TERMINAL_ROUTES = {
    "counter.index",
    "counter.open_terminal",
    "counter.close_terminal",
    "kiosk.open_kiosk",
}


@dataclass
class World:
    app: Flask
    ids: dict[str, Any]


def _b_session_key(app: Flask) -> str:
    """Sign B's counter staff in (a real session row of B) and return its key."""
    client = app.test_client()
    reply = client.post("/staff/login", data={"login": "b.clerk", "password": PASSWORD})
    assert reply.status_code == 302
    with app.app_context(), db.new_session() as s:
        clerk = s.scalar(select(StaffUser).where(StaffUser.login == "b.clerk"))
        assert clerk is not None
        key = s.scalar(select(WebSession.key).where(WebSession.staff_id == clerk.id))
        assert key is not None
        return str(key)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(f"sqlite:///{tmp_path / 'walk.db'}")


def build_world(database_url: str) -> World:
    """Municipalities A and B, each with a library, a museum, a counter, a kiosk, a shop
    till, a bridge, staff of every role, and points (programs, a partner, a merchant)."""
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
            # The token API is on (a staff cookie is not its token: 401).
            "ADMIN_TOKEN": "walk-admin-token",
        }
    )
    db.create_all(app)
    app.config["WTF_CSRF_ENABLED"] = False  # tokens are tested elsewhere: reach the logic
    ids: dict[str, Any] = {}
    with app.app_context(), db.new_session() as s:
        for tag, code, name, isil in (
            ("a", A_CODE, A_NAME, "JP-1310001"),
            ("b", B_CODE, B_NAME, B_ISIL),
        ):
            city = build_city(s, code, name=name, partner_code=f"AIR{tag.upper()}")
            library = provider_services.create_provider(
                s,
                code=isil,
                kind=ProviderKind.LIBRARY,
                name_ja=f"{name}立図書館",
                name_kana="としょかん",
                municipality_code=code,
                municipality_name=name,
            )
            museum = provider_services.create_provider(
                s,
                code=f"{tag}-museum-1",
                kind=ProviderKind.MUSEUM,
                name_ja=f"{name}美術館",
                municipality_code=code,
                municipality_name=name,
            )
            counter = terminal_services.create_terminal(
                s, library.id, TerminalKind.COUNTER, f"{tag.upper()}窓口"
            )
            kiosk = terminal_services.create_terminal(
                s, library.id, TerminalKind.KIOSK, f"{tag.upper()}窓口キオスク"
            )
            till = terminal_services.create_terminal(
                s,
                museum.id,
                TerminalKind.MERCHANT,
                f"{tag.upper()}窓口レジ",
                merchant_id=city.museum.id,
            )
            bridge = BridgeDevice(
                id=f"br-{tag}-1",
                terminal_id=counter.id,
                name="bridge",
                auth_public_key="k" * 43,
                seal_public_key="s" * 87,
                paired_at=datetime.now(UTC),
            )
            s.add(bridge)
            s.commit()
            make = staff_services.create_staff
            make(s, f"{tag}.admin", PASSWORD, Role.MUNICIPAL_ADMIN, municipality_id=city.muni.id)
            make(s, f"{tag}.officer", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id)
            make(s, f"{tag}.provider", PASSWORD, Role.PROVIDER_ADMIN, library.id)
            clerk = make(s, f"{tag}.clerk", PASSWORD, Role.COUNTER_STAFF, library.id)
            shop = make(s, f"{tag}.shop", PASSWORD, Role.MERCHANT_STAFF, merchant_id=city.museum.id)
            ids[tag] = {
                "muni": city.muni.id,
                "provider_id": library.id,
                "provider_code": library.code,
                "museum_id": museum.id,
                "terminal_id": kiosk.id,
                "counter_id": counter.id,
                "till_id": till.id,
                "bridge_id": bridge.id,
                "user_id": clerk.id,
                "shop_staff_id": shop.id,
                "program_id": city.volunteering.id,
                "merchant_id": city.museum.id,
                "partner_id": city.partner.id,
            }
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
    ids["b"]["key"] = _b_session_key(app)
    return World(app, ids)


def route_args(b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each admin endpoint with an id in its path: B's object to aim at."""
    return {
        "providers_admin.edit": {"provider_id": b["provider_id"]},
        "providers_admin.terms": {"provider_id": b["provider_id"]},
        "sip2_admin.settings": {"provider_id": b["provider_id"]},
        "sip2_admin.test": {"provider_id": b["provider_id"]},
        "sip2_admin.remove": {"provider_id": b["provider_id"]},
        "admin.provider_staff_new": {"provider_id": b["provider_id"]},
        "admin.staff_toggle": {"user_id": b["user_id"]},
        "terminals_admin.change_merchant": {"terminal_id": b["till_id"]},
        "terminals_admin.pairing_code": {"terminal_id": b["counter_id"]},
        "terminals_admin.revoke": {"bridge_id": b["bridge_id"]},
        "sessions_admin.end": {"key": b["key"]},
        "sessions_admin.revoke": {"terminal_id": b["terminal_id"]},
        "identity_admin.conflict_done": {"conflict_id": 1},
        "terminals_api.get_terminal": {"terminal_id": b["counter_id"]},
        "terminals_api.create_pairing_code": {"terminal_id": b["counter_id"]},
        "terminals_api.probe": {"terminal_id": b["counter_id"]},
        "terminals_api.get_bridge": {"bridge_id": b["bridge_id"]},
        "terminals_api.revoke": {"bridge_id": b["bridge_id"]},
        "points_admin.cause": {"cause_id": 1},
        "points_admin.cause_update": {"cause_id": 1},
        "points_admin.merchant": {"merchant_id": b["merchant_id"]},
        "points_admin.merchant_update": {"merchant_id": b["merchant_id"]},
        "points_admin.staff_create": {"merchant_id": b["merchant_id"]},
        "points_admin.till_create": {"merchant_id": b["merchant_id"]},
        "points_admin.till_bind": {"merchant_id": b["merchant_id"]},
        "points_admin.partner": {"partner_id": b["partner_id"]},
        "points_admin.partner_terms": {"partner_id": b["partner_id"]},
        "points_admin.partner_key_issue": {"partner_id": b["partner_id"]},
        "points_admin.partner_key_revoke": {"partner_id": b["partner_id"]},
        "points_admin.program": {"program_id": b["program_id"]},
        "points_admin.program_update": {"program_id": b["program_id"]},
        "points_admin.program_budget": {"program_id": b["program_id"]},
        "points_admin.program_pause": {"program_id": b["program_id"]},
        "points_admin.program_resume": {"program_id": b["program_id"]},
        "points_admin.shop_settings": {"merchant_id": b["merchant_id"]},
        "points_admin.shop_secret": {"merchant_id": b["merchant_id"]},
        "points_admin.shop_key_issue": {"merchant_id": b["merchant_id"]},
        "points_admin.shop_key_revoke": {"merchant_id": b["merchant_id"]},
        "points_admin.shop_webhook_retry": {"merchant_id": b["merchant_id"], "delivery_id": 1},
        "points_admin.staff_disable": {"staff_id": b["shop_staff_id"]},
        "points_admin.staff_enable": {"staff_id": b["shop_staff_id"]},
        "points_admin.till_pairing": {"terminal_id": b["till_id"]},
        "points_terminal.open_terminal": {"terminal_id": b["till_id"]},
        "counter.open_terminal": {"terminal_id": b["counter_id"]},
        "kiosk.open_kiosk": {"terminal_id": b["terminal_id"]},
    }


def form_aimed_at(b: dict[str, Any]) -> dict[str, Any]:
    """A POST body that names B's objects in every field a form might read."""
    return {
        "provider_id": str(b["provider_id"]),
        "provider_code": b["provider_code"],
        "provider": b["provider_code"],
        "municipality_code": B_CODE,
        "municipality_name": B_NAME,
        "municipality_id": str(b["muni"]),
        "merchant_id": str(b["merchant_id"]),
        "terminal_id": str(b["till_id"]),
        "user_id": str(b["user_id"]),
        "program_id": str(b["program_id"]),
        "kind": "counter",
        "name": "侵入",
        "name_ja": "侵入",
        "code": "JP-2700999",
        "login": "intruder",
        "password": "long enough password",
        "role": "counter_staff",
        "terms_ja": "変更",
        "mykey_id": "X" * 10,
        "points": "100",
        "amount": "100",
    }


def csv_file() -> dict[str, Any]:
    rows = (
        "isil,name,kana,prefecture,municipality_code,kind\r\n"
        f"JP-2700998,侵入,しんにゅう,大阪府,{B_CODE},library\r\n"
    )
    return {"file": (io.BytesIO(rows.encode()), "b.csv")}


def snapshot(app: Flask, b: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that belongs to B, table by table."""
    with app.app_context(), db.new_session() as s:
        providers = set(s.scalars(select(Provider.id).where(Provider.municipality_code == B_CODE)))
        terminals = set(s.scalars(select(Terminal.id).where(Terminal.provider_id.in_(providers))))
        staff = set(
            s.scalars(
                select(StaffUser.id).where(
                    or_(
                        StaffUser.provider_id.in_(providers),
                        StaffUser.municipality_id == b["muni"],
                        StaffUser.merchant_id == b["merchant_id"],
                    )
                )
            )
        )
        owned = {
            "municipality_id": {b["muni"]},
            "provider_id": providers,
            "terminal_id": terminals,
            "staff_id": staff,
            "merchant_id": {b["merchant_id"]},
            "partner_id": {b["partner_id"]},
            "program_id": {b["program_id"]},
        }
        mine: dict[str, set[Any]] = {
            "providers": providers,
            "terminals": terminals,
            "staff_users": staff,
            "points_municipalities": {b["muni"]},
        }
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in Base.metadata.sorted_tables:
            conditions = [table.c[c].in_(v) for c, v in owned.items() if c in table.c]
            if table.name in mine:
                conditions.append(table.c.id.in_(mine[table.name]))
            if table.name == "providers":
                conditions.append(table.c.municipality_code == B_CODE)
            if not conditions:
                continue
            rows = s.execute(select(*_columns(table)).where(or_(*conditions))).all()
            out[table.name] = sorted(tuple(map(repr, r)) for r in rows)
        return out


def _columns(table: Table) -> list[Any]:
    return [c for c in table.c]


def admin_rules(app: Flask) -> list[Any]:
    return [
        r
        for r in app.url_map.iter_rules()
        if r.rule.startswith(PREFIXES) or r.endpoint in TERMINAL_ROUTES
    ]


def sign_in(app: Flask, login: str | None) -> FlaskClient:
    client = app.test_client()
    if login is not None:
        reply = client.post("/staff/login", data={"login": login, "password": PASSWORD})
        assert reply.status_code == 302, login
    return client


OUTSIDERS = (None, "a.admin", "a.provider", "a.clerk", "a.officer", "a.shop")


def test_every_admin_route_with_an_id_is_listed(world: World) -> None:
    args = route_args(world.ids["b"])
    missing = [
        f"{r.endpoint} {r.rule}"
        for r in admin_rules(world.app)
        if r.arguments and r.endpoint not in args
    ]
    assert not missing, f"admin routes the walk does not aim at B: {missing}"


@pytest.mark.parametrize("login", OUTSIDERS, ids=lambda x: x or "visitor")
def test_nobody_outside_b_sees_or_changes_bs_anything(world: World, login: str | None) -> None:
    walk(world, login)


def walk(world: World, login: str | None) -> None:
    """Every admin route, GET and POST, as `login` (None: a visitor), aimed at B."""
    app, b = world.app, world.ids["b"]
    client = sign_in(app, login)
    args = route_args(b)
    before = snapshot(app, b)
    assert before["providers"] and before["terminals"] and before["staff_users"]
    walked = 0
    for rule in admin_rules(app):
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            path = rule.build(args.get(rule.endpoint, {}), append_unknown=False)[1]
            if method == "GET":
                # A search that B's library matches too (its reading), where a page
                # searches (the lists, the provider typeahead); not echoing a marker.
                reply = client.get(path, query_string={"q": "としょかん"})
            elif rule.endpoint in ("tenancy.import_upload", "points_pages.grant_upload"):
                reply = client.post(path, data=csv_file(), content_type="multipart/form-data")
            else:
                reply = client.post(path, data=form_aimed_at(b))
            walked += 1
            where = f"{login or 'visitor'} {method} {path}"
            assert reply.status_code < 500, where
            if rule.arguments:
                allowed = {401, 403, 404} | ({302} if login is None else set())
                assert reply.status_code in allowed, (where, reply.status_code)
                if reply.status_code == 302:
                    assert "/staff/login" in reply.headers["Location"], where
            if method == "GET" and reply.mimetype in ("text/html", "text/csv", "application/json"):
                body = reply.get_data(as_text=True)
                shown = [m for m in B_MARKERS if m in body]
                assert not shown, (where, shown)
            assert snapshot(app, b) == before, f"{where} changed B's rows"
    assert walked >= 60


def test_the_walk_aims_at_real_objects(world: World) -> None:
    """B's own administrator opens the pages the walk aimed at (so 404 meant 'not yours')."""
    client = sign_in(world.app, "b.admin")
    b = world.ids["b"]
    assert client.get(f"/admin/providers/{b['provider_id']}").status_code == 200
    assert client.get(f"/admin/providers/{b['provider_id']}/sip2").status_code == 200
    assert client.get(f"/admin/providers/{b['provider_id']}/staff/new").status_code == 200
    page = client.get(f"/admin/terminals/?provider_id={b['provider_id']}")
    assert page.status_code == 200 and "B窓口" in page.get_data(as_text=True)
    staff = client.get("/admin/staff").get_data(as_text=True)
    assert "b.clerk" in staff and "b.officer" in staff and "a.clerk" not in staff
    assert client.post(f"/admin/terminals/{b['counter_id']}/pairing-code").status_code == 200
    # The walk's search matches B's library: B's own admin is offered it.
    offered = client.get("/admin/providers/options", query_string={"q": "としょかん"})
    assert B_ISIL in offered.get_data(as_text=True)
    clerk = sign_in(world.app, "b.clerk")
    assert clerk.post(f"/counter/open/{b['counter_id']}").status_code == 302
    officer = sign_in(world.app, "b.officer")
    assert officer.get(f"/points/programs/{b['program_id']}").status_code == 200
    assert officer.get(f"/points/merchants/{b['merchant_id']}").status_code == 200
