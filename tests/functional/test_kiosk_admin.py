"""Admin terminals page (/admin/terminals) and opening a kiosk on a device; the demo panel
exists only in demo mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask
from flask.testing import FlaskClient

from bridge.pairing import auth_public_b64u
from bridge.seal import generate_device_key, public_key_b64u
from webapp import create_app, db
from webapp.demo_data import ensure_providers
from webapp.staff import services as staff_services
from webapp.staff.models import Role
from webapp.terminals import services
from webapp.terminals.models import BridgeDevice, Terminal

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
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
        staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN, None)
        staff_services.create_staff(s, "libadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.library.id)
        staff_services.create_staff(s, "museumadmin", PASSWORD, Role.PROVIDER_ADMIN, demo.museum.id)
        staff_services.create_staff(s, "clerk", PASSWORD, Role.COUNTER_STAFF, demo.library.id)
    return app


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert found
    return found.group(1)


def sign_in(client: FlaskClient, login: str) -> str:
    page = client.get("/staff/login").get_data(as_text=True)
    client.post(
        "/staff/login", data={"login": login, "password": PASSWORD, "csrf_token": token(page)}
    )
    return token(client.get("/admin/terminals/").get_data(as_text=True))


def library_id(app: Flask) -> int:
    with app.app_context(), db.new_session() as s:
        return ensure_providers(s).library.id


def test_admin_creates_a_kiosk_makes_a_code_and_opens_the_kiosk(app: Flask) -> None:
    client = app.test_client()
    csrf = sign_in(client, "libadmin")
    lib = library_id(app)
    made = client.post(
        "/admin/terminals/",
        data={"provider_id": lib, "kind": "kiosk", "name": "Lobby kiosk", "csrf_token": csrf},
    )
    assert made.status_code == 302
    listing = client.get(f"/admin/terminals/?provider_id={lib}").get_data(as_text=True)
    assert "Lobby kiosk" in listing
    with app.app_context(), db.new_session() as s:
        terminal = s.query(Terminal).filter_by(name="Lobby kiosk").one()
    code = client.post(
        f"/admin/terminals/{terminal.id}/pairing-code", data={"csrf_token": csrf}
    ).get_data(as_text=True)
    assert re.search(r'id="pairing-code">[0-9A-Z]{5}-[0-9A-Z]{5}<', code)
    opened = client.post(f"/kiosk/open/{terminal.id}", data={"csrf_token": csrf})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/kiosk/")
    assert client.get("/kiosk/").status_code == 200
    # The kiosk session has no staff rights left.
    assert client.get("/admin/terminals/").status_code == 302


def test_other_providers_and_counter_staff_are_kept_out(app: Flask) -> None:
    owner = app.test_client()
    csrf = sign_in(owner, "libadmin")
    owner.post(
        "/admin/terminals/",
        data={
            "provider_id": library_id(app),
            "kind": "counter",
            "name": "Desk 1",
            "csrf_token": csrf,
        },
    )
    with app.app_context(), db.new_session() as s:
        terminal = s.query(Terminal).filter_by(name="Desk 1").one()
    other = app.test_client()
    other_csrf = sign_in(other, "museumadmin")
    assert "Desk 1" not in other.get("/admin/terminals/").get_data(as_text=True)
    assert (
        other.post(f"/admin/terminals/{terminal.id}/pairing-code", data={"csrf_token": other_csrf})
    ).status_code == 404
    assert other.get(f"/admin/terminals/?provider_id={library_id(app)}").status_code == 404
    clerk = app.test_client()
    page = clerk.get("/staff/login").get_data(as_text=True)
    clerk.post(
        "/staff/login", data={"login": "clerk", "password": PASSWORD, "csrf_token": token(page)}
    )
    assert clerk.get("/admin/terminals/").status_code == 403
    # A counter terminal never opens as a kiosk.
    assert owner.post(f"/kiosk/open/{terminal.id}", data={"csrf_token": csrf}).status_code == 400


def test_revoking_a_bridge_from_the_page(app: Flask) -> None:
    client = app.test_client()
    csrf = sign_in(client, "root")
    with app.app_context(), db.new_session() as s:
        terminal = services.create_terminal(s, library_id(app), "counter", "Desk 2")
        code = services.create_pairing_code(s, terminal.id).code
        auth = auth_public_b64u(ed25519.Ed25519PrivateKey.generate())
        paired = services.pair(s, code, auth, public_key_b64u(generate_device_key().public_key()))
        bridge_id = paired.bridge.id
    page = client.get("/admin/terminals/").get_data(as_text=True)
    assert (bridge_id[:12] in page and "Offline" in page) or "オフライン" in page
    revoked = client.post(f"/admin/terminals/bridges/{bridge_id}/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 302
    with app.app_context(), db.new_session() as s:
        assert s.get(BridgeDevice, bridge_id).revoked_at is not None  # type: ignore[union-attr]
    assert bridge_id[:12] not in client.get("/admin/terminals/").get_data(as_text=True)


def test_the_demo_reader_panel_is_404_outside_demo_mode(app: Flask) -> None:
    client = app.test_client()
    sign_in(client, "root")
    assert client.get("/demo/reader").status_code == 404


def test_the_demo_stack_republishes_its_crls(tmp_path: Path) -> None:
    from webapp.demo import DemoStack

    stack = DemoStack(tmp_path / "demo", use_pcsc=False)
    stack.start()
    try:
        before = stack.jlis.auth_crl_der()
        stack.refresh_crls()
        assert stack.jlis.auth_crl_der() != before
        assert stack.app is not None
        with stack.app.test_client() as client:
            assert client.get("/demo/reader").status_code == 200
    finally:
        stack.stop()
