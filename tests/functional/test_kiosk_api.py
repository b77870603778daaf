"""The kiosk purpose of the card flow end to end in process: test client -> /flow -> bus ->
bridge -> card."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from tests.fixtures.jlis import FakeClock
from tests.support.flows import begin, card_and_pin, complete, error_code
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
    """Card read, PIN prompt, sealed PIN: the response of /flow/pin/complete."""
    return card_and_pin(client, "kiosk", pin, confirm=confirm)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def card_epoch(kiosk: Kiosk) -> int | None:
    """The epoch of the card on the kiosk's reader as the platform sees it (None: none)."""
    status = kiosk.platform.remote(kiosk.terminal_id).status()
    cards = [reader.card for reader in status.readers if reader.card is not None]
    return cards[0].epoch if cards else None


@pytest.fixture
def clock(kiosk: Kiosk) -> Iterator[FakeClock]:
    """The flow service's clock, settable (idle timeouts without sleeping)."""
    service = kiosk.platform.app.extensions["cardflow"]
    fake = FakeClock()
    real, service.clock = service.clock, fake
    yield fake
    service.clock = real


def link(client: FlaskClient, provider: int, number: str, **extra: Any) -> Any:
    body = {"provider_id": provider, "customer_number": number, "accepted": True}
    return client.post("/flow/do/link", json={**body, "terms_version": 1, **extra})


def test_the_kiosk_page_needs_a_kiosk_binding(kiosk: Kiosk, client: FlaskClient) -> None:
    page = client.get("/kiosk/")
    assert page.status_code == 200 and 'data-screen="pin"' in page.get_data(as_text=True)
    anonymous = kiosk.platform.app.test_client()
    assert anonymous.get("/kiosk/").status_code == 302
    assert begin(anonymous, "kiosk").status_code == 401


def test_new_card_registers_rerolls_links_and_unlinks(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient, providers: Any
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    reply = sign_in_with_card(client).get_json()
    assert reply["flow"]["state"] == "verified"
    me = reply["result"]
    assert me["created"] and me["can_reroll"] and len(me["mykey_id"]) == 8
    rolled = client.post("/flow/do/reroll").get_json()["result"]
    assert rolled["mykey_id"] != me["mykey_id"] and rolled["rerolls_left"] == 2
    library = providers.library.id
    bad = link(client, library, "0000000012")
    assert bad.status_code == 422 and error_code(bad) == "number_invalid"
    assert bad.get_json()["error"]["message"]  # why, in words (the check digit)
    no_terms = client.post(
        "/flow/do/link", json={"provider_id": library, "customer_number": library_number(7)}
    )
    assert error_code(no_terms) == "terms_not_accepted"
    linked = link(client, library, library_number(7))
    assert linked.status_code == 200
    body = linked.get_json()["result"]
    assert [row["number"] for row in body["links"]] == [library_number(7)]
    assert not body["can_reroll"]
    assert error_code(link(client, library, library_number(8))) == "already_linked"
    gone = client.post("/flow/do/unlink", json={"provider_id": library}).get_json()["result"]
    assert gone["links"] == []
    assert client.get("/flow/do/me").get_json()["result"]["mykey_id"] == rolled["mykey_id"]
    # as flow.js reads: a GET with the JSON content type and no body
    as_page = client.get("/flow/do/points", content_type="application/json")
    assert as_page.status_code == 200, as_page.get_json()
    assert client.get("/flow/do/reroll").status_code == 405  # steps that write need a POST


def test_a_registered_card_opens_its_id(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    first = sign_in_with_card(client).get_json()["result"]
    client.post("/flow/cancel")
    second = sign_in_with_card(client).get_json()["result"]
    assert second["mykey_id"] == first["mykey_id"] and not second["created"]
    assert not second["can_reroll"]


def test_wrong_pin_brings_a_fresh_prompt_and_the_last_try_needs_a_re_tap(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient
) -> None:
    path = make_card(demo_jlis, tmp_path / "c.json", tries=3)
    reader = kiosk.insert(path)
    first = begin(client, "kiosk").get_json()["pin"]
    assert first["tries_left"] == 3 and not first["last_try"]
    wrong = complete(client, first, "0000")
    assert wrong.status_code == 422 and error_code(wrong) == "wrong_pin"
    error = wrong.get_json()["error"]
    assert error["tries_left"] == 2 and not error["final"]
    second = error["pin"]  # a new prompt, on a fresh tries read
    assert second["command_id"] != first["command_id"] and second["tries_left"] == 2
    # The old prompt is spent: its sealed PIN goes nowhere.
    assert error_code(complete(client, first)) == "flow_expired"
    # One try left: the flow ends until the card leaves the reader and comes back.
    retap = complete(client, second, "0000")
    assert retap.status_code == 409 and error_code(retap) == "pin_retap"
    assert retap.get_json()["error"]["final"] and retap.get_json()["error"]["tries_left"] == 1
    assert error_code(client.post("/flow/pin/begin")) == "pin_retap"
    assert error_code(begin(client, "kiosk")) == "pin_retap"  # same card, not re-tapped
    tapped = card_epoch(kiosk)
    reader.remove()
    reader.insert()
    # The re-tap has reached the platform (an event from the bridge: the status asked
    # at once, as this worker holds the bridge, may still show the card of before).
    wait_for(lambda: card_epoch(kiosk) not in (None, tapped))
    last = begin(client, "kiosk").get_json()["pin"]
    assert last["tries_left"] == 1 and last["last_try"]
    unconfirmed = complete(client, last)
    assert error_code(unconfirmed) == "pin_last_try"
    assert complete(client, last, confirm=True).status_code == 200
    assert CardFile.load(path).data.auth_pin.tries_left == 3


def test_card_removal_and_idle_end_the_session(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, client: FlaskClient, clock: FakeClock
) -> None:
    reader = kiosk.insert(make_card(demo_jlis, tmp_path / "c.json"))
    assert sign_in_with_card(client).status_code == 200
    assert client.get("/flow/do/me").status_code == 200
    clock.advance(59)
    assert client.get("/flow/do/me").status_code == 200  # a touch resets the idle timer
    clock.advance(61)
    idle = client.get("/flow/do/me")
    assert idle.status_code == 409 and error_code(idle) == "session_ended"
    assert sign_in_with_card(client).status_code == 200
    reader.remove()
    wait_for(lambda: client.get("/terminal/status").get_json()["card"] is None)
    removed = client.get("/flow/do/me")
    assert removed.status_code == 409 and error_code(removed) == "card_removed"
    assert error_code(client.get("/flow/do/me")) == "card_removed"  # and it stays ended


def test_english_messages(kiosk: Kiosk, client: FlaskClient) -> None:
    offline = begin(client.application.test_client(), "kiosk")
    assert offline.status_code == 401
    en = client.post("/flow/begin?lang=en", json={"purpose": "kiosk"}).get_json()["error"]
    assert en["code"] == "bridge_offline"
    assert en["title"] == "The card reader is not connected"
    ja = client.post("/flow/begin?lang=ja", json={"purpose": "kiosk"}).get_json()["error"]
    assert ja["title"] == "カードリーダーにつながっていません"


def test_purposes_are_bound_to_their_terminals(kiosk: Kiosk, client: FlaskClient) -> None:
    for purpose in ("pay", "counter_lookup", "counter_link"):
        refused = begin(client, purpose, points=10)
        assert refused.status_code == 403 and error_code(refused) == "wrong_terminal"
    assert error_code(begin(client, "nothing")) == "unknown_purpose"
    assert client.post("/flow/begin", json=["kiosk"]).status_code == 400
