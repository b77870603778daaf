"""Verified links at the kiosk: the citizen's library password checked by the library's
own system, through the real stack (test client -> /flow -> bus -> the library's
connector bridge -> the demo library system over SIP2), the password sealed as the page
seals it and never seen by the platform.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge import wire
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, kiosk
from tests.fixtures.sip2 import NoReaders, seal_patron_password
from tests.support.flows import card_and_pin, error_code
from webapp import db
from webapp.db import Base
from webapp.demo_data import DemoProviders, ensure_providers
from webapp.identity.models import ServiceLink
from webapp.library_demo import PATRONS, DemoLibrary
from webapp.sip2.demo import connect_demo_library
from webapp.terminals import registry
from webapp.terminals import services as terminal_services
from webapp.terminals.models import TerminalKind
from webapp.terminals.testing import BridgeThread

__all__ = ["kiosk"]

VALID, PAUL, BLOCKED, EXPIRED, LOST, JAPANESE = PATRONS
PIN = "1234"


@dataclass
class Library:
    """The kiosk's platform, the demo library (provider) and its connected system."""

    kiosk: Kiosk
    providers: DemoProviders
    system: DemoLibrary
    jlis: DemoJLIS
    tmp: Path
    cards: int = 0

    def citizen(self) -> FlaskClient:
        """A new citizen's card on the kiosk, signed in with the PIN: their client."""
        self.cards += 1
        path = self.tmp / f"card{self.cards}.json"
        data = card_data_from_issued(self.jlis.issue(), pin=PIN, sign_password="ABC123")
        CardFile.create(path, data)
        self.kiosk.insert(path)
        client = self.kiosk.platform.app.test_client()
        with client.session_transaction() as sess:
            sess["terminal_id"] = self.kiosk.terminal_id
            sess["terminal_kind"] = TerminalKind.KIOSK
        assert card_and_pin(client, "kiosk").status_code == 200
        return client

    def links(self) -> list[tuple[str, str, str]]:
        """(MyKey ID, number, verification) of every link of the library."""
        with self.kiosk.platform.app.app_context(), db.new_session() as s:
            rows = s.execute(
                select(ServiceLink.mykey_id, ServiceLink.customer_number, ServiceLink.verification)
                .where(ServiceLink.provider_id == self.providers.library.id)
                .order_by(ServiceLink.id)
            ).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def library(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, demo_library: DemoLibrary
) -> Iterator[Library]:
    platform = kiosk.platform
    with platform.app.app_context(), db.new_session() as s:
        providers = ensure_providers(s)
        connector = terminal_services.create_terminal(
            s, providers.library.id, TerminalKind.COUNTER, "Counter 1"
        ).id
    # The library's connector: a bridge on the library's network (no card reader needed).
    identity = platform.pair_bridge(tmp_path / "connector-home", connector)
    with BridgeThread(identity, NoReaders(), backoff_base=0.05, backoff_cap=0.2):
        with platform.app.app_context(), db.new_session() as s:
            library = s.merge(providers.library)
            connect_demo_library(
                s, library, connector, host=demo_library.host, port=demo_library.port
            )
        yield Library(kiosk, providers, demo_library, demo_jlis, tmp_path)


def prepare(client: FlaskClient, library: Library, number: str) -> Any:
    return client.post(
        "/flow/do/link_prepare",
        json={
            "provider_id": library.providers.library.id,
            "customer_number": number,
            "accepted": True,
            "terms_version": library.providers.library.terms_version,
        },
    )


def verify(client: FlaskClient, library: Library, number: str, password: str) -> Any:
    """link_prepare, the password sealed as the page does, link_verify."""
    prepared = prepare(client, library, number)
    assert prepared.status_code == 200, prepared.get_json()
    seal = prepared.get_json()["result"]["seal"]
    sealed = seal_patron_password(seal["seal_key"], seal["bridge_id"], seal["command_id"], password)
    return client.post("/flow/do/link_verify", json={"sealed": sealed})


def claim(client: FlaskClient, library: Library, number: str) -> Any:
    body = {
        "provider_id": library.providers.library.id,
        "customer_number": number,
        "accepted": True,
        "terms_version": library.providers.library.terms_version,
    }
    return client.post("/flow/do/link", json=body)


def test_the_kiosk_offers_the_password_for_a_library_with_sip2(library: Library) -> None:
    client = library.citizen()
    me = client.get("/flow/do/me").get_json()["result"]
    offered = {p["id"]: p["sip2"] for p in me["providers"]}
    assert offered[library.providers.library.id] is True
    assert offered[library.providers.museum.id] is False


def test_the_right_password_links_the_number_verified_by_the_library(library: Library) -> None:
    client = library.citizen()
    done = verify(client, library, VALID.number, VALID.password)
    assert done.status_code == 200, done.get_json()
    # The answer is the link just made (the page merges it into the screen it shows).
    link = done.get_json()["result"]["link"]
    assert (link["provider_id"], link["number"], link["verified"]) == (
        library.providers.library.id,
        VALID.number,
        True,
    )
    assert [(n, v) for _, n, v in library.links()] == [(VALID.number, "library")]
    # What reached the library system: the login, the status, one 63; nothing else.
    assert set(library.system.commands()) <= {"93", "99", "63"}


def test_a_wrong_password_writes_nothing_and_is_throttled(library: Library) -> None:
    client = library.citizen()
    for _ in range(5):
        wrong = verify(client, library, VALID.number, "not-the-password")
        assert error_code(wrong) == "library_password_wrong", wrong.get_json()
        assert wrong.get_json()["error"]["final"] is False
    assert library.links() == []
    asked = library.system.commands()["63"]
    throttled = verify(client, library, VALID.number, VALID.password)
    assert error_code(throttled) == "library_password_throttled"
    assert throttled.get_json()["error"]["retry_after"] > 0
    assert library.system.commands()["63"] == asked  # refused before the library was asked
    assert library.links() == []


def test_a_number_verified_by_another_citizen_cannot_be_claimed(library: Library) -> None:
    owner = library.citizen()
    assert verify(owner, library, VALID.number, VALID.password).status_code == 200
    stranger = library.citizen()
    # A claim says nothing (accepted like any other) but never opens the account.
    assert claim(stranger, library, VALID.number).status_code == 200
    # Even with the password (told only to someone who proved it): the number is taken.
    taken = verify(stranger, library, VALID.number, VALID.password)
    assert error_code(taken) == "number_taken"
    verifications = sorted(v for _, n, v in library.links() if n == VALID.number)
    assert verifications == ["library", "unverified"]


def test_the_owner_verifying_replaces_a_squatters_claim(library: Library) -> None:
    squatter = library.citizen()
    assert claim(squatter, library, PAUL.number).status_code == 200
    assert [(n, v) for _, n, v in library.links()] == [(PAUL.number, "unverified")]
    owner = library.citizen()
    done = verify(owner, library, PAUL.number, PAUL.password)
    assert done.status_code == 200, done.get_json()
    assert [(n, v) for _, n, v in library.links()] == [(PAUL.number, "library")]


def test_a_claim_is_verified_in_place_with_the_password(library: Library) -> None:
    client = library.citizen()
    assert claim(client, library, JAPANESE.number).status_code == 200
    done = verify(client, library, JAPANESE.number, JAPANESE.password)  # 図書館パス66
    assert done.status_code == 200, done.get_json()
    assert [(n, v) for _, n, v in library.links()] == [(JAPANESE.number, "library")]


def test_a_blocked_card_is_not_linked(library: Library) -> None:
    client = library.citizen()
    refused = verify(client, library, BLOCKED.number, BLOCKED.password)
    assert error_code(refused) == "library_card_not_valid"
    assert library.links() == []


def test_the_library_system_down_is_said_and_nothing_is_written(library: Library) -> None:
    client = library.citizen()
    library.system.stop()
    # Said before the citizen types the password: the system is asked first (99).
    down = prepare(client, library, VALID.number)
    assert error_code(down) == "library_system_unavailable"
    assert down.get_json()["error"]["final"] is False
    assert library.links() == []


def test_a_tampered_envelope_opens_nowhere(library: Library) -> None:
    client = library.citizen()
    prepared = prepare(client, library, VALID.number).get_json()["result"]["seal"]
    # Sealed for another command: the bridge cannot open it.
    sealed = seal_patron_password(
        prepared["seal_key"], prepared["bridge_id"], "another-command", VALID.password
    )
    refused = client.post("/flow/do/link_verify", json={"sealed": sealed})
    assert error_code(refused) == "library_password_start_again"
    no_prepare = library.citizen().post("/flow/do/link_verify", json={"sealed": sealed})
    assert error_code(no_prepare) == "library_password_start_again"
    assert library.links() == []


def test_one_sealed_password_is_checked_once_however_often_it_is_sent(
    library: Library,
) -> None:
    """A script sends the same link_verify twice at once, from two tabs of one session,
    then once more after: the library system is asked once (the command id the password
    was sealed for runs once, whichever worker holds the bridge), one link is written,
    and every other try is told to start again."""
    client = library.citizen()
    prepared = prepare(client, library, VALID.number)
    assert prepared.status_code == 200, prepared.get_json()
    seal = prepared.get_json()["result"]["seal"]
    body = {
        "sealed": seal_patron_password(
            seal["seal_key"], seal["bridge_id"], seal["command_id"], VALID.password
        )
    }
    twin = library.kiosk.platform.app.test_client()
    for cookie in client._cookies.values():
        twin.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    asked_before = library.system.commands()["63"]
    start = threading.Barrier(2)

    def send(tab: FlaskClient) -> Any:
        start.wait(timeout=10)
        return tab.post("/flow/do/link_verify", json=body)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(send, (client, twin)))
    answers.append(twin.post("/flow/do/link_verify", json=body))
    assert sorted(a.status_code for a in answers)[0] == 200
    assert [a.status_code for a in answers].count(200) == 1, [a.get_json() for a in answers]
    refused = [error_code(a) for a in answers if a.status_code != 200]
    assert refused == ["library_password_start_again"] * 2
    assert library.system.commands()["63"] - asked_before == 1
    assert [(n, v) for _, n, v in library.links()] == [(VALID.number, "library")]


def test_the_library_password_appears_nowhere_on_the_platform(
    library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    """Logs (every logger, debug), the database, and every message between the platform
    and the bridge: what goes on the bus, and every frame the worker holding the bridge
    sends it or reads from it (a worker holding the bridge runs its own commands on the
    connection without the bus: registry.local_connection)."""
    caplog.set_level(logging.DEBUG)
    bus = library.kiosk.platform.bus
    seen: list[str] = []
    real_request = bus.request
    real_send = registry.BridgeConnection.send
    real_on_frame = registry.BridgeConnection.on_frame

    def recording(channel: str, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        reply = real_request(channel, message, timeout)
        seen.append(json.dumps(message, ensure_ascii=False))
        seen.append(json.dumps(reply, ensure_ascii=False))
        return reply

    def sending(conn: registry.BridgeConnection, frame: wire.Frame) -> bool:
        seen.append(wire.encode(frame))
        return real_send(conn, frame)

    def reading(conn: registry.BridgeConnection, frame: wire.Frame) -> None:
        seen.append(wire.encode(frame))
        real_on_frame(conn, frame)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(bus, "request", recording)
        patched.setattr(registry.BridgeConnection, "send", sending)
        patched.setattr(registry.BridgeConnection, "on_frame", reading)
        client = library.citizen()
        assert verify(client, library, JAPANESE.number, JAPANESE.password).status_code == 200
        wrong = verify(library.citizen(), library, VALID.number, "wrong-パスワード-123")
        assert error_code(wrong) == "library_password_wrong"
    assert any("sip2" in frame for frame in seen)  # the exchanges were captured
    secrets = (JAPANESE.password, "wrong-パスワード-123", library.system.login_password)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    with library.kiosk.platform.app.app_context(), db.new_session() as s:
        dump = "\n".join(
            repr(row) for table in Base.metadata.sorted_tables for row in s.execute(select(table))
        )
    for secret in secrets:
        for encoded in {secret, json.dumps(secret)[1:-1]}:
            assert encoded not in logged
            assert encoded not in dump
            assert all(encoded not in frame for frame in seen)
