"""The JPKI driver's sans-IO operations (bridge/jpki.py) over the in-process virtual card."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge import jpki
from bridge.errors import (
    CardStatusError,
    Code,
    NotMyNumberCard,
    PINFormatError,
    PINGuardRefused,
    PINLocked,
    TransportError,
    WrongPIN,
)
from bridge.transport import Operation, drive
from bridge.vcard.applets import with_filler
from bridge.vcard.card import VirtualCard
from bridge.vcard.transport import VirtualCardTransport
from tests.fixtures.cards import DemoCard, MakeCardFile

DATA = b"origin|nonce|purpose|terminal"
DIGEST_INFO = jpki.sha256_digest_info(DATA)


def stored_auth_tries(path: Path) -> int:
    return int(json.loads(path.read_text("utf-8"))["jpki"]["auth"]["pin"]["tries_left"])


def verify_signature(cert_der: bytes, signature: bytes) -> None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, DATA, padding.PKCS1v15(), hashes.SHA256())


def card_with_tries(make_card_file: MakeCardFile, tmp_path: Path, tries: int) -> DemoCard:
    return make_card_file(tmp_path / f"tries{tries}.json", auth_tries_left=tries)


def verify_commands(transport: VirtualCardTransport) -> list[bytes]:
    """Data of every VERIFY that carried a PIN."""
    return [c.data for c in transport.sent if c.ins == 0x20 and c.data]


# -- certificates -----------------------------------------------------------------------


def test_read_certificate_in_one_round_trip(
    vcard_transport: VirtualCardTransport, card_file: DemoCard
) -> None:
    assert drive(jpki.read_certificate(), vcard_transport) == card_file.issued.auth_cert_der
    assert vcard_transport.transmit_calls == 1


def test_read_ca_certificate(vcard_transport: VirtualCardTransport, card_file: DemoCard) -> None:
    der = drive(jpki.read_certificate(ef=0x000B), vcard_transport)
    assert der == card_file.issued.auth_ca_der


def test_long_certificate_takes_a_second_round_trip(
    vcard_transport: VirtualCardTransport, card_file: DemoCard
) -> None:
    profile = dataclasses.replace(jpki.MYNUMBER_2015, cert_read_bytes=512)
    assert drive(jpki.read_certificate(profile), vcard_transport) == card_file.issued.auth_cert_der
    assert vcard_transport.transmit_calls == 2


def test_signing_certificate_is_not_readable_by_the_driver() -> None:
    with pytest.raises(ValueError, match="user-authentication"):
        next(jpki.read_certificate(ef=0x0001))


def test_card_removed_mid_read(virtual_card: VirtualCard) -> None:
    transport = VirtualCardTransport(virtual_card, remove_after=3)
    with pytest.raises(TransportError) as caught:
        drive(jpki.read_certificate(), transport)
    assert caught.value.code == Code.CARD_REMOVED


class ForeignCard:
    """A contactless card without JPKI-AP (a transit card, say)."""

    def power_on(self) -> bytes:
        return bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")

    def power_off(self) -> None:
        return None

    def transmit(self, raw: bytes) -> bytes:
        return b"\x6a\x82" if raw[1] == 0xA4 else b"\x6d\x00"


@pytest.mark.parametrize(
    "op",
    [
        lambda: jpki.read_certificate(),
        lambda: jpki.read_pin_tries(),
        lambda: jpki.sign_digest_info(DIGEST_INFO),
        lambda: jpki.verify_pin("1234"),
    ],
    ids=["read", "tries", "sign", "verify"],
)
def test_not_a_my_number_card(op: Callable[[], Operation[object]]) -> None:
    transport = VirtualCardTransport(ForeignCard())
    with pytest.raises(NotMyNumberCard) as caught:
        drive(op(), transport)
    assert caught.value.code == Code.NOT_MY_NUMBER_CARD and caught.value.sw == 0x6A82


# -- PIN ----------------------------------------------------------------------------------


def test_tries_and_verify(vcard_transport: VirtualCardTransport) -> None:
    assert drive(jpki.read_pin_tries(), vcard_transport) == 3
    assert drive(jpki.verify_pin("1234"), vcard_transport) is None
    assert drive(jpki.read_pin_tries(), vcard_transport) is None  # verified this session


def test_wrong_pin_with_tries_left(vcard_transport: VirtualCardTransport) -> None:
    with pytest.raises(WrongPIN) as caught:
        drive(jpki.verify_pin("0000"), vcard_transport)
    assert caught.value.tries_left == 2 and caught.value.code == Code.WRONG_PIN
    assert caught.value.sw == 0x63C2


def test_last_try_needs_confirmation(make_card_file: MakeCardFile, tmp_path: Path) -> None:
    card_file = card_with_tries(make_card_file, tmp_path, 1)
    transport = VirtualCardTransport(card_file.load())
    with pytest.raises(PINGuardRefused) as caught:
        drive(jpki.verify_pin("0000"), transport)
    assert caught.value.code == Code.PIN_LAST_TRY and caught.value.tries_left == 1
    assert verify_commands(transport) == []  # nothing spent
    assert stored_auth_tries(card_file.path) == 1
    # With the citizen's confirmation it tries, once.
    with pytest.raises(WrongPIN) as wrong:
        drive(jpki.verify_pin("0000", confirm_last_try=True), transport)
    assert wrong.value.tries_left == 0 and wrong.value.code == Code.PIN_LOCKED
    assert verify_commands(transport) == [b"0000"]
    assert stored_auth_tries(card_file.path) == 0


def test_last_try_confirmed_and_right(make_card_file: MakeCardFile, tmp_path: Path) -> None:
    card_file = card_with_tries(make_card_file, tmp_path, 1)
    transport = VirtualCardTransport(card_file.load())
    drive(jpki.verify_pin("1234", confirm_last_try=True), transport)
    assert stored_auth_tries(card_file.path) == 3


def test_guard_refuses_a_locked_card(make_card_file: MakeCardFile, tmp_path: Path) -> None:
    transport = VirtualCardTransport(make_card_file(tmp_path / "l.json", locked=True).load())
    assert drive(jpki.read_pin_tries(), transport) == 0
    with pytest.raises(PINGuardRefused) as caught:
        drive(jpki.verify_pin("1234", confirm_last_try=True), transport)
    assert caught.value.code == Code.PIN_LOCKED and caught.value.tries_left == 0
    assert verify_commands(transport) == []


def test_locked_between_tries_and_verify(
    vcard_transport: VirtualCardTransport, virtual_card: VirtualCard
) -> None:
    op = jpki.verify_pin("1234")
    batch = next(op)
    batch = op.send(vcard_transport.transmit(batch))  # tries read: 3
    virtual_card.data.auth_pin.tries_left = 0  # locked meanwhile (another terminal)
    with pytest.raises(PINLocked) as caught:
        op.send(vcard_transport.transmit(batch))
    assert caught.value.code == Code.PIN_LOCKED and caught.value.sw == 0x6984


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "１２３４", ""])
def test_pin_format_is_checked_before_anything_is_sent(
    vcard_transport: VirtualCardTransport, pin: str
) -> None:
    with pytest.raises(PINFormatError):
        drive(jpki.verify_pin(pin), vcard_transport)
    assert vcard_transport.apdu_count == 0


def test_counters_persist_across_card_sessions(card_file: DemoCard) -> None:
    with pytest.raises(WrongPIN):
        drive(jpki.verify_pin("0000"), VirtualCardTransport(card_file.load()))
    fresh = VirtualCardTransport(VirtualCard.from_file(card_file.path))
    assert drive(jpki.read_pin_tries(), fresh) == 2


# -- signatures ---------------------------------------------------------------------------


def test_verify_and_sign(vcard_transport: VirtualCardTransport, card_file: DemoCard) -> None:
    signature = drive(jpki.verify_and_sign("1234", DIGEST_INFO), vcard_transport)
    verify_signature(card_file.issued.auth_cert_der, signature)
    assert vcard_transport.transmit_calls == 2


def test_sign_after_verify_pin(vcard_transport: VirtualCardTransport, card_file: DemoCard) -> None:
    drive(jpki.verify_pin("1234"), vcard_transport)
    signature = drive(jpki.sign_digest_info(DIGEST_INFO), vcard_transport)
    verify_signature(card_file.issued.auth_cert_der, signature)


def test_sign_without_pin(vcard_transport: VirtualCardTransport) -> None:
    with pytest.raises(CardStatusError) as caught:
        drive(jpki.sign_digest_info(DIGEST_INFO), vcard_transport)
    assert caught.value.code == Code.PIN_NOT_VERIFIED and caught.value.sw == 0x6982


def test_verify_and_sign_wrong_pin(vcard_transport: VirtualCardTransport) -> None:
    with pytest.raises(WrongPIN):
        drive(jpki.verify_and_sign("4321", DIGEST_INFO), vcard_transport)
    # The batch stopped at the failed VERIFY: no signature was attempted.
    assert [c.ins for c in vcard_transport.sent][-1] == 0x20


def test_pin_never_in_logs(
    vcard_transport: VirtualCardTransport, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    drive(jpki.verify_and_sign("1234", DIGEST_INFO), vcard_transport)
    with pytest.raises(WrongPIN):
        drive(jpki.verify_pin("9876"), vcard_transport)
    assert "1234" not in caplog.text and "9876" not in caplog.text
    assert "31323334" not in caplog.text.replace(" ", "")


def test_certificate_read_stops_at_the_end_of_the_ef(
    vcard_transport: VirtualCardTransport, card_file: DemoCard
) -> None:
    ef_size = len(with_filler(card_file.issued.auth_cert_der, 256))
    assert ef_size < jpki.MYNUMBER_2015.cert_read_bytes  # the EF ends inside the batch
    drive(jpki.read_certificate(), vcard_transport)
    # SELECT AP, SELECT EF, the chunks of the EF, and the one READ that answers 6B00.
    assert vcard_transport.apdu_count == 2 + ef_size // 256 + 1
