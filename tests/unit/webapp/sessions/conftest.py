"""Session store fixtures: the whole app on a fresh SQLite file, a clock the test moves,
staff of two providers, kiosks, and the messages the store publishes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.forms import csrf_token
from webapp import create_app, db
from webapp.bus import get_bus
from webapp.demo_data import ensure_providers
from webapp.sessions import services
from webapp.sessions.models import WebSession
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser
from webapp.terminals import services as terminal_services
from webapp.terminals.models import TerminalKind

PASSWORD = "correct horse battery"


class Clock:
    """A clock that only moves when told to (`advance`)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    """The app and what the tests need of it."""

    app: Flask
    clock: Clock
    library: int
    museum: int
    kiosk: int
    museum_kiosk: int
    ended: list[dict[str, Any]] = field(default_factory=list)

    def browser(self, **headers: str) -> FlaskClient:
        client = self.app.test_client()
        if headers:
            client.environ_base.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
        return client

    def db(self) -> Session:
        session: Session = self.app.extensions["db_sessionmaker"]()
        return session

    def rows(self) -> list[WebSession]:
        with self.db() as s:
            return list(s.scalars(select(WebSession).order_by(WebSession.created_at)))

    def staff(self, login: str) -> StaffUser:
        with self.db() as s:
            user = s.scalar(select(StaffUser).where(StaffUser.login == login))
            assert user is not None
            return user


def cookie_of(client: FlaskClient) -> str | None:
    """The session cookie the browser holds, or None."""
    found = client.get_cookie("session")
    return found.value if found is not None else None


def sign_in(client: FlaskClient, login: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form (with its CSRF token)."""
    page = client.get("/staff/login").get_data(as_text=True)
    return client.post(
        "/staff/login",
        data={"login": login, "password": password, "csrf_token": csrf_token(page)},
    )


def token_of(client: FlaskClient, url: str = "/staff/") -> str:
    """The CSRF token of a page the browser may see."""
    html = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def open_kiosk(site: Site, terminal_id: int, login: str = "root") -> FlaskClient:
    """A browser made a kiosk the real way: an admin signs in and opens it."""
    browser = site.browser()
    sign_in(browser, login)
    opened = browser.post(f"/kiosk/open/{terminal_id}", data={"csrf_token": token_of(browser)})
    assert opened.status_code == 302, opened.get_data(as_text=True)
    return browser


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    db.create_all(app)
    clock = Clock()
    app.session_interface.clock = clock  # type: ignore[attr-defined]
    with app.app_context(), db.new_session() as s:
        demo = ensure_providers(s)
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
        staff_services.create_staff(s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.library.id)
        staff_services.create_staff(s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.museum.id)
        staff_services.create_staff(s, "clerk", PASSWORD, Role.COUNTER_STAFF, demo.library.id)
        staff_services.create_staff(s, "museumclerk", PASSWORD, Role.COUNTER_STAFF, demo.museum.id)
        kiosk = terminal_services.create_terminal(s, demo.library.id, TerminalKind.KIOSK, "Lobby")
        other = terminal_services.create_terminal(s, demo.museum.id, TerminalKind.KIOSK, "Hall")
        ids = (demo.library.id, demo.museum.id, kiosk.id, other.id)
    found = Site(app, clock, *ids)
    subscription = get_bus(app).subscribe(services.ENDED_CHANNEL, found.ended.append)
    yield found
    subscription.unsubscribe()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether `condition` came true within `timeout` (the in-process bus delivers on its
    own thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def ended_keys(site: Site, expected: int) -> list[str]:
    """The keys announced on sessions.ended, once at least `expected` have arrived."""

    def keys() -> list[str]:
        return [key for message in site.ended for key in message["keys"]]

    wait_until(lambda: len(keys()) >= expected)
    return keys()
