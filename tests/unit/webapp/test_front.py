"""The front door (/): the ways in, in Japanese first; the demo's only in demo mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from webapp import create_app, db
from webapp.demo_data import LOGINS, ensure_providers
from webapp.front import KIOSK_PLACES_SHOWN
from webapp.providers import services as provider_services
from webapp.providers.models import ProviderKind
from webapp.staff import services as staff_services
from webapp.terminals import services as terminal_services
from webapp.terminals.models import TerminalKind


def make_app(tmp_path: Path, *, demo: bool) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'front.db'}",
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
            "DEMO_MODE": demo,
        }
    )
    db.create_all(app)
    with app.app_context(), db.new_session() as s:
        demo_providers = ensure_providers(s)
        terminal_services.create_terminal(s, demo_providers.library.id, TerminalKind.KIOSK, "K1")
        terminal_services.create_terminal(s, demo_providers.museum.id, TerminalKind.COUNTER, "C1")
        login, (password, role) = next(iter(LOGINS.items()))
        staff_services.create_staff(s, login, password, role)
    return app


def test_the_front_door_shows_the_ways_in_in_japanese_first(tmp_path: Path) -> None:
    app = make_app(tmp_path, demo=False)
    reply = app.test_client().get("/")
    assert reply.status_code == 200
    page = reply.get_data(as_text=True)
    assert '<html lang="ja">' in page
    assert 'href="/home/"' in page and 'href="/staff/login"' in page
    assert "いちまい市立中央図書館" in page  # has a kiosk
    assert "いちまい市立美術館" not in page  # a counter only
    assert "/demo/reader" not in page and LOGINS["admin"][0] not in page
    english = app.test_client().get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Ichimai City Central Library" in english


def test_the_demo_shows_its_reader_and_the_logins_that_exist(tmp_path: Path) -> None:
    page = make_app(tmp_path, demo=True).test_client().get("/").get_data(as_text=True)
    assert 'href="/demo/reader"' in page
    assert LOGINS["admin"][0] in page  # made above
    assert LOGINS["counter"][0] not in page  # not in this database: not offered


def test_a_visitor_of_the_front_door_leaves_no_session(tmp_path: Path) -> None:
    reply = make_app(tmp_path, demo=False).test_client().get("/")
    assert "csrf-token" not in reply.get_data(as_text=True)
    assert "Set-Cookie" not in reply.headers


@pytest.mark.parametrize("extra", [0, 5])
def test_the_kiosk_list_is_bounded(tmp_path: Path, extra: int) -> None:
    app = make_app(tmp_path, demo=False)
    with app.app_context(), db.new_session() as s:
        for n in range(KIOSK_PLACES_SHOWN - 1 + extra):
            provider = provider_services.create_provider(
                s, code=f"JP-20{n:05d}", kind=ProviderKind.LIBRARY, name_ja=f"図書館{n}"
            )
            terminal_services.create_terminal(s, provider.id, TerminalKind.KIOSK, "K")
    page = app.test_client().get("/").get_data(as_text=True)
    assert page.count('<li class="place">') == KIOSK_PLACES_SHOWN
    assert ("ほかにもあります" in page) == (extra > 0)
