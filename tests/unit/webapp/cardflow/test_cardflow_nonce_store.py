"""The nonce store failing (Redis down, or full) is a clear, retryable flow error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk
from tests.support.flows import sealed_for
from tests.unit.webapp.cardflow.test_cardflow_flows import card
from webapp import db
from webapp.cardflow.errors import CardFlowError, FlowCode, from_verification_error
from webapp.cardflow.flows import FlowService
from webapp.cardflow.machine import State
from webapp.cardflow.purposes import FlowContext
from webapp.catalogue import error_body
from webapp.jpki import ChallengeRecord, InMemoryNonceStore, NonceStoreFull, NonceStoreUnavailable
from webapp.terminals.models import Terminal


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


@pytest.fixture
def ctx(kiosk: Kiosk) -> Any:
    app = kiosk.platform.app
    service: FlowService = app.extensions["cardflow"]
    with app.app_context(), db.new_session() as s:
        terminal = s.get(Terminal, kiosk.terminal_id)
        assert terminal is not None
        yield lambda: FlowContext(s, terminal, "k", app.config, service.link, time.time())


def test_the_reason_maps_to_a_retryable_flow_code(kiosk: Kiosk) -> None:
    error = from_verification_error(NonceStoreUnavailable("down"))
    assert error.code is FlowCode.SERVICE_UNAVAILABLE and not error.final
    with kiosk.platform.app.test_request_context():
        body = error_body(error.code.value, "ja")
    assert body["code"] == "service_unavailable" and "しばらく" in str(body["action"])


@pytest.mark.parametrize("trouble", ["down", "full"])
def test_no_pin_prompt_when_no_challenge_can_be_kept(
    kiosk: Kiosk, store: FlakyStore, demo_jlis: DemoJLIS, tmp_path: Path, ctx: Any, trouble: str
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    setattr(store, trouble, True)
    service: FlowService = kiosk.platform.app.extensions["cardflow"]
    with pytest.raises(CardFlowError) as info:
        service.begin(ctx(), "kiosk", {})
    assert info.value.code is FlowCode.SERVICE_UNAVAILABLE and not info.value.final


def test_store_down_at_the_answer_refuses_and_never_accepts_twice(
    kiosk: Kiosk, store: FlakyStore, demo_jlis: DemoJLIS, tmp_path: Path, ctx: Any
) -> None:
    kiosk.insert(card(demo_jlis, tmp_path / "c.json"))
    service: FlowService = kiosk.platform.app.extensions["cardflow"]
    reply = service.begin(ctx(), "kiosk", {})
    pin = reply.to_json()["pin"]
    nonce = reply.flow.prompt.nonce  # type: ignore[union-attr]
    store.down = True
    with pytest.raises(CardFlowError) as info:
        service.complete(
            ctx(), sealed=sealed_for(pin), command_id=pin["command_id"], confirm_last_try=False
        )
    assert info.value.code is FlowCode.SERVICE_UNAVAILABLE
    store.down = False
    assert store.inner.take(nonce) is not None  # still there: it was never accepted
    assert store.inner.take(nonce) is None
    # The flow went back to "card read": a new prompt reads the tries afresh.
    again = service.prompt(ctx())
    assert again.flow.state is State.PIN_PROMPTED
