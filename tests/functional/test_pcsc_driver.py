"""The JPKI driver through real pcscd + vpcd + the virtual card, via PcscTransport."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge import jpki
from bridge.apdu import Command
from bridge.errors import CardStatusError, Code, TransportError, WrongPIN
from bridge.transport import Step, drive
from bridge.transports.pcsc import PcscTransport, list_readers
from bridge.vcard.pcscd_harness import AttachedCard
from tests.fixtures.cards import DemoCard, MakeCardFile
from tests.fixtures.pcsc import AttachCard

pytestmark = pytest.mark.pcsc

MESSAGE = b"ichimai: pcsc functional test"


def check_signature(cert_der: bytes, signature: bytes, message: bytes) -> None:
    """Raise InvalidSignature unless `signature` is the cert's PKCS#1 v1.5 SHA-256 one."""
    key = x509.load_der_x509_certificate(cert_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_lists_the_virtual_readers(pcsc_reader: str, empty_reader: str) -> None:
    readers = list_readers()
    assert pcsc_reader in readers and empty_reader in readers


def test_reads_both_certificates(pcsc_reader: str, card_file: DemoCard) -> None:
    with PcscTransport(pcsc_reader) as transport:
        cert = drive(jpki.read_certificate(), transport)
        ca = drive(jpki.read_certificate(ef=jpki.MYNUMBER_2015.ef_auth_ca_cert), transport)
    assert cert == card_file.issued.auth_cert_der
    assert ca == card_file.issued.auth_ca_der


def test_picks_the_reader_holding_a_card(pcsc_reader: str, card_file: DemoCard) -> None:
    with PcscTransport() as transport:
        assert transport.reader == pcsc_reader
        assert drive(jpki.read_certificate(), transport) == card_file.issued.auth_cert_der


def test_signs_after_pin(pcsc_reader: str, card_file: DemoCard) -> None:
    digest_info = jpki.sha256_digest_info(MESSAGE)
    with PcscTransport(pcsc_reader) as transport:
        assert drive(jpki.read_pin_tries(), transport) == 3
        signature = drive(jpki.verify_and_sign(card_file.pin, digest_info), transport)
    check_signature(card_file.issued.auth_cert_der, signature, MESSAGE)


def test_wrong_pin_counts_down(pcsc_reader: str) -> None:
    with PcscTransport(pcsc_reader) as transport:
        with pytest.raises(WrongPIN) as caught:
            drive(jpki.verify_pin("9999"), transport)
        assert caught.value.tries_left == 2
        assert drive(jpki.read_pin_tries(), transport) == 2


def test_closing_resets_the_card(pcsc_reader: str, card_file: DemoCard) -> None:
    """A verified PIN must not outlive our connection for the next application."""
    with PcscTransport(pcsc_reader) as transport:
        drive(jpki.verify_pin(card_file.pin), transport)
        drive(jpki.sign_digest_info(jpki.sha256_digest_info(MESSAGE)), transport)
    with PcscTransport(pcsc_reader) as transport, pytest.raises(CardStatusError) as caught:
        drive(jpki.sign_digest_info(jpki.sha256_digest_info(MESSAGE)), transport)
    assert caught.value.code == Code.PIN_NOT_VERIFIED


def test_batch_stops_at_unexpected_status(pcsc_reader: str) -> None:
    select_missing = Step(jpki.select_ef(0x0099))
    read = Step(jpki.read_binary(0, 4))
    with PcscTransport(pcsc_reader) as transport:
        responses = transport.transmit([Step(jpki.select_jpki()), select_missing, read])
    assert [r.sw for r in responses] == [0x9000, 0x6A82]


def test_card_removed_mid_session(pcsc_card: AttachedCard) -> None:
    with PcscTransport(pcsc_card.reader.name) as transport:
        drive(jpki.read_certificate(), transport)
        pcsc_card.yank()
        with pytest.raises(TransportError) as caught:
            drive(jpki.read_certificate(), transport)
        assert caught.value.code in (Code.CARD_REMOVED, Code.NO_CARD)
        assert not transport.connected


def test_reinserted_card_is_reconnected(
    pcsc_card: AttachedCard, attach_card: AttachCard, card_file: DemoCard
) -> None:
    with PcscTransport(pcsc_card.reader.name) as transport:
        drive(jpki.read_certificate(), transport)
        pcsc_card.yank()
        with pytest.raises(TransportError):
            drive(jpki.read_certificate(), transport)
        attach_card(card_file.path, pcsc_card.reader)
        assert drive(jpki.read_certificate(), transport) == card_file.issued.auth_cert_der


def test_no_card_in_reader(empty_reader: str) -> None:
    with pytest.raises(TransportError) as caught:
        PcscTransport(empty_reader).connect()
    assert caught.value.code == Code.NO_CARD


def test_no_such_reader(pcscd: object) -> None:
    with pytest.raises(TransportError) as caught:
        PcscTransport("no such reader").connect()
    assert caught.value.code == Code.READER_MISSING


def test_two_cards_in_two_readers(
    attach_card: AttachCard, make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    alice = make_card_file(tmp_path / "alice.json", identity="alice")
    bob = make_card_file(tmp_path / "bob.json", identity="bob")
    readers = [attach_card(alice.path).reader.name, attach_card(bob.path).reader.name]
    certs = []
    for reader in readers:
        with PcscTransport(reader) as transport:
            certs.append(drive(jpki.read_certificate(), transport))
    assert certs == [alice.issued.auth_cert_der, bob.issued.auth_cert_der]


def test_pin_never_logged(
    pcsc_reader: str, card_file: DemoCard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with PcscTransport(pcsc_reader) as transport:
        drive(jpki.verify_pin(card_file.pin), transport)
        with pytest.raises(WrongPIN):  # a failing VERIFY goes through the error path too
            drive(jpki.verify_pin("9876"), transport)
        bad = Command(0x00, 0x20, 0x00, 0x80, b"5555")
        transport.transmit([Step(bad)])
    # Reader names carry port numbers, which could contain any 4 digits: blank them.
    text = "\n".join(r.getMessage() for r in caplog.records).replace(pcsc_reader, "<reader>")
    assert caplog.records  # the transport did log (connect, errors): we looked at something
    for pin in (card_file.pin, "9876", "5555"):
        assert pin not in text and pin.encode().hex() not in text.lower()
