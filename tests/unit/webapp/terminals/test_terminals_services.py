"""Terminals domain: pairing codes, pairing, bridge authentication, revocation, presence."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge import seal, wire
from bridge.pairing import auth_public_b64u
from webapp import db
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.errors import (
    BridgeAuthError,
    InvalidRequest,
    PairingError,
    UnknownBridge,
    UnknownTerminal,
)
from webapp.terminals.models import PairingCode, utcnow
from webapp.terminals.testing import ADMIN_TOKEN, build_app

ORIGIN = "https://ichimai.example.jp"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = build_app(f"sqlite:///{tmp_path / 't.db'}", origin=ORIGIN)
    yield app
    app.extensions["bus"].close()


@pytest.fixture
def s(app: Any) -> Iterator[Session]:
    with app.app_context(), db.new_session() as session:
        yield session


@pytest.fixture
def terminal_id(s: Session) -> int:
    provider = Provider(code="JP-1000001", kind="library", name_ja="図書館")
    s.add(provider)
    s.commit()
    return services.create_terminal(s, provider.id, "counter", "Counter 1").id


class Keys:
    def __init__(self) -> None:
        self.auth = ed25519.Ed25519PrivateKey.generate()
        self.seal = seal.generate_device_key()
        self.auth_b64u = auth_public_b64u(self.auth)
        self.seal_b64u = seal.public_key_b64u(self.seal.public_key())


def pair(s: Session, terminal_id: int, **kw: Any) -> tuple[Keys, services.Paired]:
    keys = Keys()
    code = services.create_pairing_code(s, terminal_id).code
    return keys, services.pair(s, code, keys.auth_b64u, keys.seal_b64u, **kw)


def test_pairing_codes_are_typable_and_stored_as_hashes(s: Session, terminal_id: int) -> None:
    issued = services.create_pairing_code(s, terminal_id)
    raw = issued.code.replace("-", "")
    assert len(issued.code) == 11 and issued.code[5] == "-"
    assert set(raw) <= set(services.CODE_ALPHABET)
    assert not set(raw) & set("ILOU")
    assert timedelta(minutes=9) < issued.expires_at - utcnow() <= timedelta(minutes=10)
    [row] = s.scalars(select(PairingCode)).all()
    assert row.code_hash == services.hash_code(issued.code)
    assert raw not in row.code_hash


def test_codes_are_read_as_people_type_them() -> None:
    assert services.normalize_code("ab0o1-IL xyz") == "AB00111XYZ"
    assert services.hash_code("abcde-fghjk") == services.hash_code("ABCDEFGHJK")


def test_pairing(s: Session, terminal_id: int) -> None:
    keys, paired = pair(s, terminal_id, name="counter PC")
    bridge = paired.bridge
    assert bridge.id.startswith("brg_") and wire.check_id(bridge.id)
    assert bridge.terminal_id == terminal_id and bridge.name == "counter PC"
    assert bridge.auth_public_key == keys.auth_b64u
    assert bridge.seal_public_key == keys.seal_b64u
    assert paired.replaced == ()


def test_a_code_works_once(s: Session, terminal_id: int) -> None:
    code = services.create_pairing_code(s, terminal_id).code
    keys = Keys()
    services.pair(s, code, keys.auth_b64u, keys.seal_b64u)
    with pytest.raises(PairingError) as used:
        services.pair(s, code.lower(), keys.auth_b64u, keys.seal_b64u)
    assert used.value.code == "used_code"


def test_an_expired_code_is_refused(s: Session, terminal_id: int) -> None:
    issued = services.create_pairing_code(s, terminal_id, now=utcnow() - timedelta(minutes=11))
    keys = Keys()
    with pytest.raises(PairingError) as expired:
        services.pair(s, issued.code, keys.auth_b64u, keys.seal_b64u)
    assert expired.value.code == "expired_code"


@pytest.mark.parametrize("code", ["ABCDE-FGHJK", "short", ""])
def test_a_wrong_code_is_refused(s: Session, terminal_id: int, code: str) -> None:
    services.create_pairing_code(s, terminal_id)
    keys = Keys()
    with pytest.raises(PairingError) as wrong:
        services.pair(s, code, keys.auth_b64u, keys.seal_b64u)
    assert wrong.value.code == "invalid_code"


@pytest.mark.parametrize(
    ("auth", "sealing"),
    [("", "ok"), ("AAAA", "ok"), ("ok", ""), ("ok", wire.b64u(b"\x04" + b"\x01" * 64))],
)
def test_malformed_keys_are_refused(s: Session, terminal_id: int, auth: str, sealing: str) -> None:
    keys = Keys()
    code = services.create_pairing_code(s, terminal_id).code
    with pytest.raises(InvalidRequest):
        services.pair(
            s,
            code,
            keys.auth_b64u if auth == "ok" else auth,
            keys.seal_b64u if sealing == "ok" else sealing,
        )


def test_a_new_bridge_replaces_the_terminals_old_one(s: Session, terminal_id: int) -> None:
    _, first = pair(s, terminal_id)
    _, second = pair(s, terminal_id)
    assert second.replaced == (first.bridge.id,)
    s.refresh(first.bridge)
    assert first.bridge.revoked_at is not None
    assert second.bridge.revoked_at is None


def test_unknown_terminal(s: Session) -> None:
    with pytest.raises(UnknownTerminal):
        services.create_pairing_code(s, 999)


def test_terminal_validation(s: Session, terminal_id: int) -> None:
    with pytest.raises(InvalidRequest):
        services.create_terminal(s, 1, "vending", "x")
    with pytest.raises(InvalidRequest):
        services.create_terminal(s, 1, "kiosk", " ")


def test_challenge_response(s: Session, terminal_id: int) -> None:
    keys, paired = pair(s, terminal_id)
    bridge_id = paired.bridge.id
    nonce = os.urandom(32)
    good = keys.auth.sign(wire.auth_transcript(ORIGIN, bridge_id, nonce))
    assert services.authenticate(s, bridge_id, ORIGIN, nonce, good).id == bridge_id
    attempts = [
        (bridge_id, ORIGIN, os.urandom(32), good),  # another nonce
        (bridge_id, "https://evil.example", nonce, good),  # signed for another origin
        (
            bridge_id,
            ORIGIN,
            nonce,
            Keys().auth.sign(wire.auth_transcript(ORIGIN, bridge_id, nonce)),
        ),
        ("brg_unknown", ORIGIN, nonce, good),
    ]
    for attempt in attempts:
        with pytest.raises(BridgeAuthError) as refused:
            services.authenticate(s, *attempt)
        assert refused.value.code == "unauthorized"
    services.revoke(s, bridge_id)
    with pytest.raises(BridgeAuthError) as revoked:
        services.authenticate(s, bridge_id, ORIGIN, nonce, good)
    assert revoked.value.code == "revoked"


def test_revoke(s: Session, terminal_id: int) -> None:
    _, paired = pair(s, terminal_id)
    first = services.revoke(s, paired.bridge.id).revoked_at
    assert first is not None
    assert services.revoke(s, paired.bridge.id).revoked_at == first  # idempotent
    with pytest.raises(UnknownBridge):
        services.revoke(s, "brg_nope")


def test_presence(s: Session, terminal_id: int) -> None:
    _, paired = pair(s, terminal_id)
    bridge_id = paired.bridge.id
    window = timedelta(seconds=45)
    assert services.mark_connected(s, [bridge_id], "w1") == set()
    device = services.get_bridge(s, bridge_id)
    s.refresh(device)
    now = utcnow()
    assert services.is_online(device, now, window)
    assert not services.is_online(device, now + timedelta(minutes=5), window)  # stale worker
    services.mark_disconnected(s, [bridge_id], "w2")  # not the holder: no change
    s.refresh(device)
    assert device.connected_worker == "w1"
    assert services.touch(s, [bridge_id], "w1") == set()
    services.revoke(s, bridge_id)
    assert services.touch(s, [bridge_id], "w1") == {bridge_id}
    services.mark_disconnected(s, [bridge_id], "w1")
    s.refresh(device)
    assert not services.is_online(device, utcnow(), window)


def test_listing_pages_by_id(s: Session, terminal_id: int) -> None:
    other = services.create_terminal(s, 1, "kiosk", "Kiosk").id
    ids = sorted([pair(s, terminal_id)[1].bridge.id, pair(s, other)[1].bridge.id])
    assert [b.id for b in services.list_bridges(s)] == ids
    assert [b.id for b in services.list_bridges(s, limit=1)] == ids[:1]
    assert [b.id for b in services.list_bridges(s, after=ids[0])] == ids[1:]
    assert [b.terminal_id for b in services.list_bridges(s, terminal_id=other)] == [other]


# -- the JSON API ------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_admin_routes_need_the_token(app: Any, terminal_id: int) -> None:
    client = app.test_client()
    for method, path in [
        ("POST", f"/api/v1/admin/terminals/{terminal_id}/pairing-codes"),
        ("GET", "/api/v1/admin/bridges"),
        ("POST", "/api/v1/admin/bridges/brg_x/revoke"),
        ("POST", "/api/v1/admin/terminals"),
    ]:
        assert client.open(path, method=method).status_code == 401
        assert (
            client.open(path, method=method, headers={"Authorization": "Bearer no"}).status_code
            == 401
        )
    app.config["ADMIN_TOKEN"] = ""
    os.environ.pop("ICHIMAI_ADMIN_TOKEN", None)
    assert client.get("/api/v1/admin/bridges", headers=AUTH).status_code == 503


def test_api_pairing_and_errors(app: Any, terminal_id: int) -> None:
    client = app.test_client()
    code = client.post(
        f"/api/v1/admin/terminals/{terminal_id}/pairing-codes", headers=AUTH
    ).get_json()
    keys = Keys()
    body = {
        "code": code["code"],
        "auth_public_key": keys.auth_b64u,
        "seal_public_key": keys.seal_b64u,
    }
    paired = client.post("/api/v1/bridges/pair", json=body)
    assert paired.status_code == 201
    assert paired.get_json()["terminal"]["id"] == terminal_id
    again = client.post("/api/v1/bridges/pair", json=body)
    assert again.status_code == 403
    assert again.get_json() == {
        "error": {"code": "used_code", "message": "this pairing code was already used"}
    }
    assert client.post("/api/v1/bridges/pair", json={"code": 5}).status_code == 400
    assert client.post("/api/v1/bridges/pair", data="nope").status_code == 400
    missing = client.get("/api/v1/admin/bridges/brg_nope", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "unknown_bridge"
    view = client.get(f"/api/v1/admin/bridges/{paired.get_json()['bridge_id']}", headers=AUTH)
    assert view.get_json()["online"] is False and view.get_json()["readers"] is None


def test_probe_of_an_offline_terminal(app: Any, terminal_id: int) -> None:
    answer = app.test_client().post(f"/api/v1/admin/terminals/{terminal_id}/probe", headers=AUTH)
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "bridge_offline"
