"""The nonce store failing (Redis down, or full) is a clear, retryable flow error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk
from tests.unit.webapp.cardflow.test_cardflow_services import card, sealed
from webapp.cardflow import error_body, services
from webapp.cardflow.errors import CardFlowError, FlowCode, from_verification_error
from webapp.jpki import ChallengeRecord, InMemoryNonceStore, NonceStoreFull, NonceStoreUnavailable


class FlakyStore:
    """A real in-memory store that can be switched down (as Redis going away) or full."""

    def __init__(self) -> None:
        self.inner = InMemoryNonceStore()
        self.down = False
        self.full = False

    def put(self, nonce: str, record: ChallengeRecord, ttl: float) -> None:
        if self.down:
            raise NonceStoreUnavailable("Redis unreachable")
        if self.full:
            raise NonceStoreFull("at the bound")
        self.inner.put(nonce, record, ttl)

    def take(self, nonce: str) -> ChallengeRecord | None:
        if self.down:
            raise NonceStoreUnavailable("Redis unreachable")
        return self.inner.take(nonce)


@pytest.fixture
def store(kiosk: Kiosk) -> FlakyStore:
    flaky = FlakyStore()
    kiosk.verifier.challenges.store = flaky
    return flaky


def test_the_reason_maps_to_a_retryable_flow_code() -> None:
    error = from_verification_error(NonceStoreUnavailable("down"))
    assert error.code is FlowCode.SERVICE_UNAVAILABLE and not error.final
    body = error_body(error, "ja")
    assert body["code"] == "service_unavailable" and "しばらく" in str(body["action"])


@pytest.mark.parametrize("trouble", ["down", "full"])
def test_no_pin_prompt_when_no_challenge_can_be_kept(
    kiosk: Kiosk,
    store: FlakyStore,
    demo_jlis: DemoJLIS,
    tmp_path: Path,
    db_session: Any,
    trouble: str,
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    setattr(store, trouble, True)
    with pytest.raises(CardFlowError) as info:
        services.begin_pin(
            kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id, "kiosk", s=db_session
        )
    assert info.value.code is FlowCode.SERVICE_UNAVAILABLE


def test_store_down_at_the_answer_refuses_and_never_accepts_twice(
    kiosk: Kiosk, store: FlakyStore, demo_jlis: DemoJLIS, tmp_path: Path, db_session: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    bus, verifier, t = kiosk.platform.bus, kiosk.verifier, kiosk.terminal_id
    prompt = services.begin_pin(bus, verifier, t, "kiosk", s=db_session)
    store.down = True
    with pytest.raises(CardFlowError) as info:
        services.complete_pin(bus, verifier, t, prompt.state(), sealed(prompt))
    assert info.value.code is FlowCode.SERVICE_UNAVAILABLE
    store.down = False
    assert store.inner.take(prompt.nonce) is not None  # still there: it was never accepted
    assert store.inner.take(prompt.nonce) is None
