"""The flow service over the real path: FlowService -> bus -> /ws/bridge -> bridge session
-> virtual card, for the kiosk purpose (the others differ only in their purpose)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk
from tests.support.flows import sealed_for
from webapp import db
from webapp.cardflow import card as cardio
from webapp.cardflow.errors import CardFlowError, FlowCode
from webapp.cardflow.flows import FlowService, WrongPinError
from webapp.cardflow.machine import State
from webapp.cardflow.purposes import FlowContext
from webapp.jpki.errors import NonceUnknownOrUsed
from webapp.terminals.models import Terminal

PIN = "1234"


def card(
    jlis: DemoJLIS, path: Path, *, locked: bool = False, tries: int | None = None, **issue: Any
) -> Path:
    data = card_data_from_issued(
        jlis.issue(**issue), pin=PIN, sign_password="ABC123", locked=locked
    )
    if tries is not None:
        data.auth_pin.tries_left = tries
    CardFile.create(path, data)
    return path


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def service(kiosk: Kiosk) -> FlowService:
    found: FlowService = kiosk.platform.app.extensions["cardflow"]
    return found


@pytest.fixture
def ctx(kiosk: Kiosk, service: FlowService) -> Iterator[Callable[..., FlowContext]]:
    """A FlowContext at the kiosk for a session key (a fresh database session each)."""
    app = kiosk.platform.app
    with app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, kiosk.terminal_id)
        assert terminal is not None

        def make(session_key: str = "session-a") -> FlowContext:
            return FlowContext(s, terminal, session_key, app.config, service.link, time.time())

        yield make


def public_pin(reply: Any) -> dict[str, Any]:
    body = reply.to_json()
    assert "pin" in body, body
    return dict(body["pin"])


def test_begin_reads_the_card_and_prompts(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    reply = service.begin(ctx(), "kiosk", {})
    assert reply.flow.state is State.PIN_PROMPTED and reply.flow.tries_left == 3
    pin = public_pin(reply)
    assert set(pin) == {"bridge_id", "seal_public_key", "command_id", "tries_left", "last_try"}
    assert pin["bridge_id"] == kiosk.identity.bridge_id
    body = reply.to_json()
    assert "nonce" not in str(body) and reply.flow.card_key not in str(body)


def test_pin_then_signature_verifies_and_burns_the_nonce(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    reply = service.begin(ctx(), "kiosk", {})
    nonce = reply.flow.prompt.nonce  # type: ignore[union-attr]
    pin = public_pin(reply)
    done = service.complete(
        ctx(), sealed=sealed_for(pin), command_id=pin["command_id"], confirm_last_try=False
    )
    assert done.flow.state is State.VERIFIED and done.flow.signed
    assert done.result is not None and done.result["created"]
    assert done.flow.certificate is None  # not kept once verified
    with pytest.raises(NonceUnknownOrUsed):
        kiosk.verifier.challenges.take(nonce)


def test_wrong_pin_burns_the_nonce_and_prompts_afresh(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    reply = service.begin(ctx(), "kiosk", {})
    nonce = reply.flow.prompt.nonce  # type: ignore[union-attr]
    pin = public_pin(reply)
    with pytest.raises(WrongPinError) as wrong:
        service.complete(
            ctx(),
            sealed=sealed_for(pin, "9999"),
            command_id=pin["command_id"],
            confirm_last_try=False,
        )
    assert wrong.value.code == FlowCode.WRONG_PIN and wrong.value.tries_left == 2
    assert wrong.value.reply.flow.state is State.PIN_PROMPTED
    assert wrong.value.reply.flow.prompt.tries_left == 2  # type: ignore[union-attr]
    with pytest.raises(NonceUnknownOrUsed):
        kiosk.verifier.challenges.take(nonce)


def test_a_locked_card_is_refused_before_any_pin(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json", locked=True))
    with pytest.raises(CardFlowError) as locked:
        service.begin(ctx(), "kiosk", {})
    assert locked.value.code == FlowCode.PIN_LOCKED and locked.value.final


def test_expired_and_revoked_certificates_are_refused(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    now = datetime.now(UTC)
    kiosk.insert(
        card(
            demo_jlis,
            tmp_path / "old.json",
            not_before=now - timedelta(days=400),
            not_after=now - timedelta(days=1),
        )
    )
    with pytest.raises(CardFlowError) as expired:
        service.begin(ctx(), "kiosk", {})
    assert expired.value.code == FlowCode.EXPIRED

    lost = demo_jlis.issue()
    path = tmp_path / "lost.json"
    CardFile.create(path, card_data_from_issued(lost, pin=PIN, sign_password="ABC123"))
    demo_jlis.revoke(lost.auth_cert_der)
    kiosk.verifier.revocation.refresh_all()
    kiosk.insert(path)
    with pytest.raises(CardFlowError) as revoked:
        service.begin(ctx(), "kiosk", {})
    assert revoked.value.code == FlowCode.REVOKED


def _newer_card(service: FlowService, terminal_id: int, epoch: int) -> bool:
    found = cardio.terminal_status(service.link, terminal_id).card
    return found is not None and found.epoch != epoch


def test_card_removed_no_card_and_bridge_offline(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    reader = kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    t = kiosk.terminal_id
    reply = service.begin(ctx(), "kiosk", {})
    epoch = reply.flow.epoch
    assert epoch is not None
    reader.remove()
    reader.insert()  # the same card back: a new card session
    # Wait for the new session itself: between the two events no card is there at all.
    wait_for(lambda: _newer_card(service, t, epoch))
    with pytest.raises(CardFlowError) as removed:
        service.prompt(ctx())  # pinned to the old card session
    assert removed.value.code == FlowCode.CARD_REMOVED
    with pytest.raises(CardFlowError) as ended:
        service.prompt(ctx())
    assert ended.value.code == FlowCode.CARD_REMOVED  # it stays ended
    reader.remove()
    wait_for(lambda: cardio.terminal_status(service.link, t).card is None)
    with pytest.raises(CardFlowError) as none:
        service.begin(ctx(), "kiosk", {})
    assert none.value.code == FlowCode.NO_CARD
    kiosk.stop()
    wait_for(lambda: not cardio.terminal_status(service.link, t).online)
    with pytest.raises(CardFlowError) as offline:
        service.begin(ctx(), "kiosk", {})
    assert offline.value.code == FlowCode.BRIDGE_OFFLINE


def test_flows_are_per_session(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, service: FlowService, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    pin = public_pin(service.begin(ctx("session-a"), "kiosk", {}))
    with pytest.raises(CardFlowError) as other:
        service.complete(
            ctx("session-b"),
            sealed=sealed_for(pin),
            command_id=pin["command_id"],
            confirm_last_try=False,
        )
    assert other.value.code == FlowCode.SESSION_ENDED  # session b has no flow here
    done = service.complete(
        ctx("session-a"),
        sealed=sealed_for(pin),
        command_id=pin["command_id"],
        confirm_last_try=False,
    )
    assert done.flow.state is State.VERIFIED
