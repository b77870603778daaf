"""The kiosk's JSON API end to end in process: test client -> services -> bus -> bridge -> card."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.seal import SealContext, seal_pin
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from webapp import db
from webapp.demo_data import DemoProviders, ensure_providers, library_number
from webapp.terminals.models import TerminalKind

__all__ = ["db_session", "kiosk"]

PIN = "1234"


def make_card(jlis: DemoJLIS, path: Path, *, tries: int | None = None) -> Path:
    data = card_data_from_issued(jlis.issue(), pin=PIN, sign_password="ABC123")
    if tries is not None:
        data.auth_pin.tries_left = tries
    CardFile.create(path, data)
    return path


@pytest.fixture
def providers(kiosk: Kiosk) -> DemoProviders:
    with kiosk.platform.app.app_context(), db.new_session() as s:
        return ensure_providers(s)


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as sess:
        sess["terminal_id"] = kiosk.terminal_id
        sess["terminal_kind"] = TerminalKind.KIOSK
    return client


def sign_in_with_card(client: FlaskClient, pin: str = PIN, confirm: bool = False) -> Any:
    """Card read, PIN prompt, sealed PIN: the response of /pin/complete."""
    assert client.post("/kiosk/api/card").status_code == 200
    prompt = client.post("/kiosk/api/pin/begin").get_json()
    sealed = seal_pin(
        prompt["seal_public_key"], pin, SealContext(prompt["bridge_id"], prompt["command_id"])
    )
    return client.post(
        "/kiosk/api/pin/complete", json={"sealed": sealed, "confirm_last_try": confirm}
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_kiosk_page_needs_a_kiosk_binding(kiosk: Kiosk, client: FlaskClient) -> None:
    page = client.get("/kiosk/")
    assert page.status_code == 200 and 'data-screen="pin"' in page.get_data(as_text=True)
    anonymous = kiosk.platform.app.test_client()
    assert anonymous.get("/kiosk/").status_code == 302
    assert anonymous.post("/kiosk/api/card").status_code == 401


def test_new_card_registers_rerolls_links_and_unlinks(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient, providers: Any
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    me = sign_in_with_card(client).get_json()
    assert me["created"] and me["can_reroll"] and len(me["mykey_id"]) == 8
    rolled = client.post("/kiosk/api/reroll").get_json()
    assert rolled["mykey_id"] != me["mykey_id"] and rolled["rerolls_left"] == 2
    library = providers.library.id
    bad = client.post(
        "/kiosk/api/links",
        json={
            "provider_id": library,
            "customer_number": "0000000012",
            "accepted": True,
            "terms_version": 1,
        },
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "number_invalid"
    no_terms = client.post(
        "/kiosk/api/links", json={"provider_id": library, "customer_number": library_number(7)}
    )
    assert no_terms.get_json()["error"]["code"] == "terms_not_accepted"
    linked = client.post(
        "/kiosk/api/links",
        json={
            "provider_id": library,
            "customer_number": library_number(7),
            "accepted": True,
            "terms_version": 1,
        },
    )
    assert linked.status_code == 201
    body = linked.get_json()
    assert [link["number"] for link in body["links"]] == [library_number(7)]
    assert not body["can_reroll"]
    again = client.post(
        "/kiosk/api/links",
        json={
            "provider_id": library,
            "customer_number": library_number(8),
            "accepted": True,
            "terms_version": 1,
        },
    )
    assert again.get_json()["error"]["code"] == "already_linked"
    gone = client.post(f"/kiosk/api/links/{library}/delete").get_json()
    assert gone["links"] == []


def test_a_registered_card_opens_its_id(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    first = sign_in_with_card(client).get_json()
    client.post("/kiosk/api/end")
    second = sign_in_with_card(client).get_json()
    assert second["mykey_id"] == first["mykey_id"] and not second["created"]
    assert not second["can_reroll"]


def test_wrong_pin_then_last_try(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json", tries=2))
    wrong = sign_in_with_card(client, "0000")
    assert wrong.status_code == 400
    assert wrong.get_json()["error"]["code"] == "wrong_pin"
    assert wrong.get_json()["error"]["tries_left"] == 1
    prompt = client.post("/kiosk/api/pin/begin").get_json()
    assert prompt["tries_left"] == 1
    unconfirmed = client.post(
        "/kiosk/api/pin/complete",
        json={
            "sealed": seal_pin(
                prompt["seal_public_key"],
                PIN,
                SealContext(prompt["bridge_id"], prompt["command_id"]),
            )
        },
    )
    assert unconfirmed.get_json()["error"]["code"] == "pin_last_try"
    assert sign_in_with_card(client, confirm=True).status_code == 200


def test_card_removal_and_idle_end_the_session(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    reader = kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    assert sign_in_with_card(client).status_code == 200
    assert client.get("/kiosk/api/me").status_code == 200
    kiosk.platform.app.config["KIOSK_IDLE_SECONDS"] = 0.2
    time.sleep(0.3)
    idle = client.get("/kiosk/api/me")
    assert idle.status_code == 409 and idle.get_json()["error"]["code"] == "session_ended"
    kiosk.platform.app.config["KIOSK_IDLE_SECONDS"] = 60
    assert sign_in_with_card(client).status_code == 200
    reader.remove()
    wait_for(lambda: client.get("/terminal/status").get_json()["card"] is None)
    removed = client.get("/kiosk/api/me")
    assert removed.status_code == 409 and removed.get_json()["error"]["code"] == "card_removed"
    assert client.get("/kiosk/api/me").get_json()["error"]["code"] == "session_ended"


def test_english_messages(kiosk: Kiosk, client: FlaskClient) -> None:
    offline = client.post("/kiosk/api/card?lang=en").get_json()["error"]
    assert offline["code"] == "bridge_offline"
    assert offline["title"] == "The card reader is not connected"
    ja = client.post("/kiosk/api/card?lang=ja").get_json()["error"]
    assert ja["title"] == "カードリーダーにつながっていません"
