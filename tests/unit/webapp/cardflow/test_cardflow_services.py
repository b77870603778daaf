"""cardflow services over the real path: bus -> /ws/bridge -> bridge session -> virtual card."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.seal import SealContext, seal_pin
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk
from webapp.cardflow import services
from webapp.cardflow.errors import CardFlowError, FlowCode
from webapp.jpki.errors import NonceUnknownOrUsed

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


def sealed(prompt: services.PinPrompt, pin: str = PIN) -> dict[str, Any]:
    return seal_pin(
        prompt.seal_public_key_b64u, pin, SealContext(prompt.bridge_id, prompt.command_id)
    )


def test_read_card_identifies_a_good_card(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    read = services.read_card(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id)
    assert len(read.card.card_key) == 32 and not read.card.signed
    assert services.card_present(kiosk.platform.bus, kiosk.terminal_id, read.epoch)
    again = services.read_card(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id)
    assert again.card.card_key == read.card.card_key


def test_pin_then_signature_gives_a_verified_card(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    bus, verifier, t = kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id
    read = services.read_card(bus, verifier, t)
    prompt = services.begin_pin(bus, verifier, t, "kiosk", s=db_session, epoch=read.epoch)
    assert prompt.tries_left == 3 and prompt.bridge_id == kiosk.identity.bridge_id
    assert set(prompt.public()) == {"bridge_id", "seal_public_key", "command_id", "tries_left"}
    verified = services.complete_pin(bus, verifier, t, prompt.state(), sealed(prompt))
    assert verified.signed and verified.card_key == read.card.card_key
    assert verified.purpose == "kiosk" and verified.terminal_id == str(t)
    with pytest.raises(NonceUnknownOrUsed):  # burnt
        verifier.challenges.take(prompt.nonce)


def test_wrong_pin_reports_tries_left_and_burns_the_nonce(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    bus, verifier, t = kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id
    prompt = services.begin_pin(bus, verifier, t, "kiosk", s=db_session)
    with pytest.raises(CardFlowError) as wrong:
        services.complete_pin(bus, verifier, t, prompt.state(), sealed(prompt, "9999"))
    assert wrong.value.code == FlowCode.WRONG_PIN and wrong.value.tries_left == 2
    with pytest.raises(NonceUnknownOrUsed):
        verifier.challenges.take(prompt.nonce)
    assert services.begin_pin(bus, verifier, t, "kiosk", s=db_session).tries_left == 2


def test_last_try_needs_confirmation(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json", tries=1))
    bus, verifier, t = kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id
    prompt = services.begin_pin(bus, verifier, t, "kiosk", s=db_session)
    assert prompt.tries_left == 1
    with pytest.raises(CardFlowError) as refused:
        services.complete_pin(bus, verifier, t, prompt.state(), sealed(prompt))
    assert refused.value.code == FlowCode.PIN_LAST_TRY
    prompt = services.begin_pin(bus, verifier, t, "kiosk", s=db_session)
    verified = services.complete_pin(
        bus, verifier, t, prompt.state(), sealed(prompt), confirm_last_try=True
    )
    assert verified.signed


def test_a_locked_card_is_refused_before_any_pin(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json", locked=True))
    with pytest.raises(CardFlowError) as locked:
        services.begin_pin(
            kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id, "kiosk", s=db_session
        )
    assert locked.value.code == FlowCode.PIN_LOCKED and locked.value.final


def test_expired_and_revoked_certificates_are_refused(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path
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
        services.read_card(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id)
    assert expired.value.code == FlowCode.EXPIRED

    lost = demo_jlis.issue()
    path = tmp_path / "lost.json"
    CardFile.create(path, card_data_from_issued(lost, pin=PIN, sign_password="ABC123"))
    demo_jlis.revoke(lost.auth_cert_der)
    kiosk.verifier.revocation.refresh_all()
    kiosk.insert(path)
    with pytest.raises(CardFlowError) as revoked:
        services.read_card(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id)
    assert revoked.value.code == FlowCode.REVOKED


def _newer_card(bus: Any, terminal_id: int, epoch: int) -> bool:
    card = services.terminal_status(bus, terminal_id).card
    return card is not None and card.epoch != epoch


def test_card_removed_and_bridge_offline(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    reader = kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    bus, verifier, t = kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id
    read = services.read_card(bus, verifier, t)
    reader.remove()
    reader.insert()  # the same card back: a new card session
    # Wait for the new session itself: between the two events no card is there at all,
    # and the flow would rightly say "no card" instead of "card removed".
    wait_for(lambda: _newer_card(bus, t, read.epoch))
    with pytest.raises(CardFlowError) as removed:
        services.begin_pin(bus, verifier, t, "kiosk", s=db_session, epoch=read.epoch)
    assert removed.value.code == FlowCode.CARD_REMOVED
    with pytest.raises(CardFlowError) as removed_read:
        services.read_card(bus, verifier, t, epoch=read.epoch)
    assert removed_read.value.code == FlowCode.CARD_REMOVED
    reader.remove()
    wait_for(lambda: services.terminal_status(bus, t).card is None)
    with pytest.raises(CardFlowError) as none:
        services.begin_pin(bus, verifier, t, "kiosk", s=db_session)
    assert none.value.code == FlowCode.NO_CARD
    kiosk.stop()
    wait_for(lambda: not services.terminal_status(bus, t).online)  # the socket closes async
    with pytest.raises(CardFlowError) as offline:
        services.read_card(bus, verifier, t)
    assert offline.value.code == FlowCode.BRIDGE_OFFLINE


def test_a_prompt_of_another_terminal_is_refused(kiosk: Kiosk) -> None:
    state = {**dict.fromkeys(services.PinPrompt.__dataclass_fields__, ""), "terminal_id": 999}
    with pytest.raises(CardFlowError) as other:
        services.complete_pin(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id, state, {})
    assert other.value.code == FlowCode.AUTH_FAILED
    with pytest.raises(CardFlowError) as empty:
        services.complete_pin(kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id, {}, {})
    assert empty.value.code == FlowCode.FLOW_EXPIRED
