"""Admin lists page and search (providers, terminals with their bridges, staff,
sessions): a bounded first page of 120 generated rows, the next page, the search box,
each admin's scope, and odd query strings (never a 500, never another provider's rows)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from tests.support.postgres import PG_URL, server_engine
from webapp import create_app, db
from webapp.demo_data import ensure_providers
from webapp.paging import PAGE_SIZE
from webapp.providers.models import Provider, ProviderKind
from webapp.providers.services import set_search_keys
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser
from webapp.terminals.models import Terminal, TerminalKind

PASSWORD = "correct horse battery"
MANY = 120
ODD = [
    "page=-1",
    "page=0",
    f"page={10**9}",
    "page=abc",
    "page=%EF%BC%91",  # a full-width 1
    "q=%25",
    "q=_",
    "q=%5C",
    "q=%00%01%1F",
    "q=" + "x" * 5000,
    "q=%25%25&page=2",
    "q=a&q=b",
    "provider_id=-1",
    f"provider_id={10**30}",
    "provider_id=x",
    "provider=%25",
]


@dataclass(frozen=True)
class World:
    app: Flask
    library: int
    museum: int


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The demo providers, 120 more providers, 120 terminals and 120 staff of each demo
    provider; on SQLite and on PostgreSQL (LIKE, its escapes and lower() differ)."""
    if request.param == "sqlite":
        yield from _world(f"sqlite:///{tmp_path / 'test.db'}")
        return
    with server_engine() as server:
        schema = f"lists_t_{uuid.uuid4().hex[:12]}"
        with server.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in PG_URL else "?"
            yield from _world(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
        finally:
            with server.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _world(url: str) -> Iterator[World]:
    app = create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True, "BUS_URL": "memory://"}
    )
    db.create_all(app)
    with app.app_context(), db.new_session() as s:
        demo = ensure_providers(s)
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
        staff_services.create_staff(s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.library.id)
        hashed = s.get(StaffUser, 1)
        assert hashed is not None
        for n in range(MANY):
            p = Provider(
                code=f"JP-9{n:05d}", kind=ProviderKind.LIBRARY, name_ja=f"生成図書館{n:03d}"
            )
            set_search_keys(p)
            s.add(p)
            s.add(
                Terminal(
                    provider_id=demo.library.id, kind=TerminalKind.COUNTER, name=f"lib-t{n:03d}"
                )
            )
            s.add(
                Terminal(
                    provider_id=demo.museum.id, kind=TerminalKind.COUNTER, name=f"mus-t{n:03d}"
                )
            )
            for who, provider in (("lib", demo.library.id), ("mus", demo.museum.id)):
                s.add(
                    StaffUser(
                        login=f"{who}clerk{n:03d}",
                        password_hash=hashed.password_hash,
                        role=Role.COUNTER_STAFF,
                        provider_id=provider,
                    )
                )
        s.commit()
        world = World(app, demo.library.id, demo.museum.id)
    try:
        yield world
    finally:
        app.extensions["db_engine"].dispose()


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert found
    return found.group(1)


def signed_in(world: World, login: str) -> FlaskClient:
    client = world.app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get("/staff/login").get_data(as_text=True)
    signed = client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token(page)}
    )
    assert signed.status_code == 302
    return client


def html(client: FlaskClient, url: str, *, odd: bool = False) -> str:
    """The page at `url` (an odd query string may also be refused: 400, no rows)."""
    answer = client.get(url)
    assert answer.status_code in ((200, 400) if odd else (200,)), url
    return answer.get_data(as_text=True)


def found(pattern: str, page: str) -> list[str]:
    return re.findall(pattern, page)


PROVIDER = r"<code>(JP-9\d{5})</code>"
TERMINAL = r"(lib-t\d{3}|mus-t\d{3})"
STAFF = r"<td>((?:lib|mus)clerk\d{3})</td>"


def test_providers_page_search_and_scope(world: World) -> None:
    root = signed_in(world, "root")
    first = html(root, "/admin/providers/")
    assert len(found(PROVIDER, first)) <= PAGE_SIZE
    assert 'aria-current="page"' in first and "page=2" in first
    assert re.search(r"Rows 1–50 of 12\d", first)
    second = html(root, "/admin/providers/?page=2")
    assert set(found(PROVIDER, first)).isdisjoint(found(PROVIDER, second))
    assert "page=1" in second  # the previous page
    hits = html(root, "/admin/providers/?q=" + "生成図書館007")
    assert found(PROVIDER, hits) == ["JP-900007"]
    assert found(PROVIDER, html(root, "/admin/providers/?q=jp-90011")) == [
        f"JP-90011{n}" for n in range(10)
    ]
    assert found(PROVIDER, html(root, "/admin/providers/?q=%25")) == []
    own = signed_in(world, "libadmin")
    mine = html(own, "/admin/providers/")
    with world.app.app_context(), db.new_session() as s:
        codes = {p.id: p.code for p in s.scalars(select(Provider))}
    assert f"<code>{codes[world.library]}</code>" in mine
    assert f"<code>{codes[world.museum]}</code>" not in mine
    for odd in ["", *ODD, "q=生成", f"q={codes[world.museum]}"]:
        page = html(own, "/admin/providers/?" + odd, odd=True)
        assert found(PROVIDER, page) == [], odd  # only their own provider, ever
        assert f"<code>{codes[world.museum]}</code>" not in page, odd


def test_terminals_page_search_and_scope(world: World) -> None:
    root = signed_in(world, "root")
    first = html(root, f"/admin/terminals/?provider_id={world.library}")
    names = found(TERMINAL, first)
    assert len(set(names)) == PAGE_SIZE and all(n.startswith("lib") for n in names)
    assert f"provider_id={world.library}" in first and "page=2" in first
    second = html(root, f"/admin/terminals/?provider_id={world.library}&page=2")
    assert set(found(TERMINAL, second)).isdisjoint(names)
    assert set(
        found(TERMINAL, html(root, f"/admin/terminals/?provider_id={world.museum}&q=T007"))
    ) == {"mus-t007"}
    own = signed_in(world, "libadmin")
    assert own.get(f"/admin/terminals/?provider_id={world.museum}").status_code == 404
    for odd in ["", *ODD, "q=mus", "provider=MUS&q=mus"]:
        answer = own.get("/admin/terminals/?" + odd)
        assert answer.status_code in (200, 400, 404), odd
        assert not any(
            n.startswith("mus") for n in found(TERMINAL, answer.get_data(as_text=True))
        ), odd
    for odd in ODD:
        assert root.get("/admin/terminals/?" + odd).status_code in (200, 400), odd


def test_staff_page_search_and_scope(world: World) -> None:
    root = signed_in(world, "root")
    first = html(root, "/admin/staff")
    assert PAGE_SIZE - 2 <= len(found(STAFF, first)) <= PAGE_SIZE and "page=2" in first
    assert re.search(r"Rows 1–50 of 24\d", first)
    second = html(root, "/admin/staff?page=2")
    assert set(found(STAFF, first)).isdisjoint(found(STAFF, second))
    assert found(STAFF, html(root, "/admin/staff?q=MUSCLERK11")) == [
        f"musclerk11{n}" for n in range(10)
    ]
    assert found(STAFF, html(root, "/admin/staff?q=_")) == []  # _ is itself, not any one character
    own = signed_in(world, "libadmin")
    assert all(n.startswith("lib") for n in found(STAFF, html(own, "/admin/staff?page=3")))
    for odd in ["", *ODD, "q=mus", "q=clerk&page=5"]:
        page = html(own, "/admin/staff?" + odd, odd=True)
        assert not any(n.startswith("mus") for n in found(STAFF, page)), odd


def test_sessions_page_odd_query_strings(world: World) -> None:
    for login in ("root", "libadmin"):
        client = signed_in(world, login)
        for odd in ODD:
            for url in ("/admin/sessions/?", "/admin/sessions/?bindings_"):
                assert client.get(url + odd).status_code in (200, 400), odd
    root = signed_in(world, "root")
    for odd in ODD:
        html(root, "/admin/providers/?" + odd, odd=True)
        html(root, "/admin/staff?" + odd, odd=True)
