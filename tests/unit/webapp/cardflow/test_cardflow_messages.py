"""Every flow code has a title, an explanation and an action in Japanese and English."""

from __future__ import annotations

import pytest

from bridge.errors import Code, PINGuardRefused, TransportError, WrongPIN
from webapp.cardflow import FlowCode, message_for
from webapp.cardflow.errors import FINAL, from_card_error, from_verification_error
from webapp.jpki.errors import CertificateExpired, CertificateRevoked, UntrustedChain


@pytest.mark.parametrize("code", list(FlowCode))
@pytest.mark.parametrize("locale", ["ja", "en"])
def test_every_code_has_words(code: FlowCode, locale: str) -> None:
    title, explanation, action = message_for(code, locale)
    assert title and explanation and action
    if locale == "ja":
        assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in title)
    else:
        assert title.isascii() and explanation.isascii()


def test_locked_pin_names_the_municipal_office() -> None:
    ja = message_for(FlowCode.PIN_LOCKED, "ja")
    assert (
        ja.explanation == "暗証番号がロックされています。お住まいの市区町村の窓口で再設定できます。"
    )
    assert "municipal office" in message_for("pin_locked", "en").explanation


def test_unknown_codes_fall_back_and_default_is_japanese() -> None:
    assert message_for("nonsense", "en") == message_for(FlowCode.CARD_UNREADABLE, "en")
    assert message_for(FlowCode.NO_CARD, "fr") == message_for(FlowCode.NO_CARD, "ja")


@pytest.mark.parametrize(
    ("error", "code", "tries"),
    [
        (WrongPIN(2), FlowCode.WRONG_PIN, 2),
        (WrongPIN(0), FlowCode.PIN_LOCKED, 0),
        (PINGuardRefused("x", code=Code.PIN_LAST_TRY, tries_left=1), FlowCode.PIN_LAST_TRY, 1),
        (TransportError("x", code=Code.CARD_REMOVED), FlowCode.CARD_REMOVED, None),
        (TransportError("x", code=Code.BRIDGE_OFFLINE), FlowCode.BRIDGE_OFFLINE, None),
        (TransportError("x", code=Code.TIMEOUT), FlowCode.TIMEOUT, None),
        (TransportError("x", code=Code.TRANSPORT), FlowCode.CARD_UNREADABLE, None),
    ],
)
def test_card_errors_map_to_flow_codes(error: Exception, code: FlowCode, tries: int | None) -> None:
    mapped = from_card_error(error)  # type: ignore[arg-type]
    assert mapped.code == code and mapped.tries_left == tries
    assert mapped.final == (code in FINAL)


def test_verification_errors_map_to_flow_codes() -> None:
    assert from_verification_error(CertificateExpired()).code == FlowCode.EXPIRED
    assert from_verification_error(CertificateRevoked()).code == FlowCode.REVOKED
    assert from_verification_error(UntrustedChain()).code == FlowCode.UNTRUSTED
