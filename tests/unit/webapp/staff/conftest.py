"""Staff/admin/i18n test fixtures: a fully wired app on a fresh SQLite file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from webapp import create_app, db, i18n, identity, staff
from webapp.providers import services as provider_services
from webapp.providers import views as provider_views
from webapp.providers.models import Provider, ProviderKind
from webapp.staff import services as staff_services
from webapp.staff.models import Role, StaffUser

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The app wired as create_app will be: i18n, staff, identity, provider admin pages."""
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "SECRET_KEY": "test",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    # Until create_app wires these itself; afterwards the guards make this a no-op.
    if "babel" not in app.extensions:
        i18n.init_app(app)
    if "staff" not in app.blueprints:
        staff.init_app(app)
    identity.init_app(app)
    if "providers_admin" not in app.blueprints:
        app.register_blueprint(provider_views.bp)
    db.create_all(app)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    """A session of its own, outside any app context: an open app context would be shared
    by the test client's requests (and with it `g`), hiding per-request state bugs."""
    session: Session = app.extensions["db_sessionmaker"]()
    yield session
    session.close()


@pytest.fixture
def provider(s: Session) -> Provider:
    return provider_services.create_provider(
        s,
        code="JP-1000001",
        kind=ProviderKind.LIBRARY,
        name_ja="中央図書館",
        name_en="Central Library",
    )


@pytest.fixture
def make_staff(s: Session, provider: Provider) -> Any:
    """Factory: a staff account with the shared test password."""

    def make(
        login: str, role: Role = Role.COUNTER_STAFF, provider_id: int | None = -1
    ) -> StaffUser:
        pid = provider.id if provider_id == -1 else provider_id
        return staff_services.create_staff(s, login, PASSWORD, role, pid)

    return make


def _csrf_token(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def _sign_in(client: FlaskClient, login: str, password: str = PASSWORD, **extra: Any) -> Any:
    """Fetch the login form, then post it with its token."""
    page = client.get("/staff/login")
    token = _csrf_token(page.get_data(as_text=True))
    data = {"login": login, "password": password, "csrf_token": token}
    return client.post("/staff/login", data=data, **extra)


@pytest.fixture
def csrf_token() -> Any:
    """Helper: the CSRF token in a rendered page."""
    return _csrf_token


@pytest.fixture
def sign_in() -> Any:
    """Helper: sign a test client in through the real form."""
    return _sign_in
