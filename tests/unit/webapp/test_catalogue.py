"""One catalogue words every outcome, in Japanese (the default) and English (Babel)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from bridge.errors import Code, PINGuardRefused, TransportError, WrongPIN
from webapp import create_app
from webapp.cardflow.errors import FINAL, FlowCode, from_card_error, from_verification_error
from webapp.catalogue import CITIZEN, STAFF, error_body, number_reason, text, words
from webapp.identity.errors import Code as IdentityCode
from webapp.jpki.errors import CertificateExpired, CertificateRevoked, UntrustedChain
from webapp.points.errors import Code as PointsCode
from webapp.providers.numbers import Reason


def japanese(value: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in value)


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    yield create_app({"DATABASE_URL": "sqlite://", "TESTING": True})


@pytest.mark.parametrize("code", list(FlowCode))
@pytest.mark.parametrize("locale", ["ja", "en"])
def test_every_flow_code_has_words(app: Flask, code: FlowCode, locale: str) -> None:
    assert code.value in CITIZEN
    with app.test_request_context():
        body = error_body(code.value, locale)
    assert body["title"] and body["message"] and body["action"]
    if locale == "ja":
        assert japanese(body["title"]) and japanese(body["message"]) and japanese(body["action"])
    else:
        assert body["title"].isascii() and body["message"].isascii()


@pytest.mark.parametrize("code", sorted(STAFF))
def test_staff_words_differ_where_they_exist(app: Flask, code: str) -> None:
    with app.test_request_context():
        ja = error_body(code, "ja", staff=True)
        en = error_body(code, "en", staff=True)
    assert japanese(ja["title"]) and en["title"].isascii() and ja["action"]


@pytest.mark.parametrize("code", [c.value for c in IdentityCode] + [c.value for c in PointsCode])
def test_domain_codes_have_both_languages(app: Flask, code: str) -> None:
    with app.app_context():
        assert japanese(text(code, "ja")) and text(code, "en").isascii()


@pytest.mark.parametrize("reason", list(Reason))
def test_number_reasons_are_worded(app: Flask, reason: Reason) -> None:
    with app.test_request_context("/?lang=ja"):
        assert japanese(str(number_reason(reason.value)))


def test_locked_pin_names_the_municipal_office(app: Flask) -> None:
    with app.test_request_context():
        ja = error_body("pin_locked", "ja")
        en = error_body("pin_locked", "en")
    assert (
        ja["message"] == "暗証番号がロックされています。お住まいの市区町村の窓口で再設定できます。"
    )
    assert "municipal office" in en["message"]


def test_unknown_codes_fall_back_and_default_is_japanese(app: Flask) -> None:
    with app.test_request_context():
        assert error_body("nonsense", "en")["title"] == "Something went wrong"
        assert error_body("no_card")["title"] == error_body("no_card", "ja")["title"]
    assert words("nonsense") is CITIZEN["internal"]


def test_the_body_carries_code_finality_tries_and_extras(app: Flask) -> None:
    with app.test_request_context():
        body = error_body("wrong_pin", "en", final=False, tries_left=2, pin={"command_id": "c"})
    assert body["code"] == "wrong_pin" and body["final"] is False and body["tries_left"] == 2
    assert body["pin"] == {"command_id": "c"} and body["tone"] == "warn"


@pytest.mark.parametrize(
    ("error", "code", "tries"),
    [
        (WrongPIN(2), FlowCode.WRONG_PIN, 2),
        (WrongPIN(0), FlowCode.PIN_LOCKED, 0),
        (PINGuardRefused("x", code=Code.PIN_LAST_TRY, tries_left=1), FlowCode.PIN_LAST_TRY, 1),
        (PINGuardRefused("x", code=Code.PIN_RETAP, tries_left=1), FlowCode.PIN_RETAP, 1),
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


@pytest.mark.parametrize("code", ["bridge_offline", "bridge_unpaired", "reader_missing"])
@pytest.mark.parametrize(("audience", "not_said"), [("home", "staff"), ("merchant", "a staff")])
def test_each_reader_is_told_what_they_can_do(
    app: Flask, code: str, audience: str, not_said: str
) -> None:
    """At home nobody is there to ask; at a till the reader is the staff."""
    with app.test_request_context():
        en = error_body(code, "en", audience=audience)
        ja = error_body(code, "ja", audience=audience)
    assert not_said not in (en["message"] + en["action"]).lower()
    assert japanese(ja["title"]) and japanese(ja["action"]) and en["action"].isascii()


def test_only_an_unpaired_bridge_is_sent_to_the_administrator(app: Flask) -> None:
    with app.test_request_context():
        offline = error_body("bridge_offline", "en", staff=True)
        unpaired = error_body("bridge_unpaired", "en", staff=True)
        kiosk = error_body("bridge_unpaired", "en", audience="kiosk")
    assert "by itself" in offline["action"] and "administrator" not in offline["action"]
    assert "pair the bridge again" in unpaired["action"] and "comes back" not in unpaired["action"]
    assert kiosk["action"] == "Please ask a staff member."
