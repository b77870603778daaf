"""The JPKI driver through real pcscd + vpcd + the virtual card, via PcscTransport."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from smartcard import scard

from bridge import jpki, wire
from bridge.apdu import SW, Command
from bridge.errors import CardStatusError, Code, TransportError, WrongPIN
from bridge.seal import SealContext, generate_device_key, seal_pin
from bridge.session import BridgeSession
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


def _interloper(reader: str, stop: threading.Event, sent: list[int]) -> None:
    """Another application on the same pcscd, sending APDUs without a transaction of its
    own: SELECT the JPKI applet and the certificate file, over and over. pcsc-lite makes
    it wait while we hold the card."""
    select_ap = list(jpki.select_jpki().encode())
    select_cert = list(jpki.select_ef(jpki.MYNUMBER_2015.ef_auth_cert).encode())
    _, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _, card, _ = scard.SCardConnect(
        ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
    )
    try:
        while not stop.is_set():
            for apdu in (select_ap, select_cert):
                hresult, _ = scard.SCardTransmit(card, scard.SCARD_PCI_T1, apdu)
                sent[0] += hresult == scard.SCARD_S_SUCCESS
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(ctx)


class _Bridge:
    """A bridge session serving the card in `reader` over PC/SC, as `bridge run` does."""

    def __init__(self, reader: str) -> None:
        self.seal_key = generate_device_key()
        self.session = BridgeSession("brg_pcsc", self.seal_key)
        self.session.add_reader(reader)
        self.transport = PcscTransport(reader)
        self.epoch = self.session.insert_card(reader, b"\x3b\x00", self.transport)

    def verify_and_sign(self, pin: str) -> wire.Result | wire.Error:
        """The sealed-PIN command with the signature of MESSAGE as its `then`."""
        command_id = wire.new_id()
        sealed = seal_pin(self.seal_key.public_key(), pin, SealContext("brg_pcsc", command_id))
        then = (
            Step(jpki.select_ef(jpki.MYNUMBER_2015.ef_auth_key)),
            Step(jpki.sign_command(jpki.sha256_digest_info(MESSAGE))),
        )
        command = wire.VerifyCommand(sealed, id=command_id, epoch=self.epoch, then=then)
        return self.session.handle(command)


def test_the_pin_command_holds_the_card_alongside_another_application(
    pcsc_reader: str, card_file: DemoCard
) -> None:
    """The bridge's sealed-PIN command holds the card in one PC/SC transaction while a
    second application keeps selecting the certificate file: every command signs, and
    the other application gets through between them (each hold is released). That every
    APDU of the command goes in one transaction is checked in test_session.py."""
    bridge = _Bridge(pcsc_reader)
    stop, sent = threading.Event(), [0]
    other = threading.Thread(target=_interloper, args=(pcsc_reader, stop, sent), daemon=True)
    other.start()
    try:
        while sent[0] < 3:  # the other application is up and running
            time.sleep(0.01)
        for _ in range(10):
            answer = bridge.verify_and_sign(card_file.pin)
            assert isinstance(answer, wire.Result), answer
            assert [r.sw for r in answer.responses] == [SW.OK, SW.OK, SW.OK]
            check_signature(card_file.issued.auth_cert_der, answer.responses[2].data, MESSAGE)
    finally:
        stop.set()
        other.join(timeout=10)
        bridge.transport.close()
    assert sent[0] > 3


def _other_application_signs(reader: str) -> int:
    """Another application tries to sign with the card as it finds it; the SW it gets."""
    with PcscTransport(reader, reset_on_close=False) as other:
        answers = other.transmit(
            [
                Step(jpki.select_jpki()),
                Step(jpki.select_ef(jpki.MYNUMBER_2015.ef_auth_key)),
                Step(jpki.sign_command(jpki.sha256_digest_info(MESSAGE))),
            ]
        )
    return answers[-1].sw


def test_the_verified_pin_does_not_outlive_the_bridge_command(
    pcsc_reader: str, card_file: DemoCard
) -> None:
    """After the sealed-PIN command signed, the card is reset: another application finds
    the PIN not verified, and the bridge's next command still reaches the card."""
    bridge = _Bridge(pcsc_reader)
    try:
        answer = bridge.verify_and_sign(card_file.pin)
        assert isinstance(answer, wire.Result)
        assert [r.sw for r in answer.responses] == [SW.OK, SW.OK, SW.OK]
        assert _other_application_signs(pcsc_reader) == SW.SECURITY_STATUS_NOT_SATISFIED
        cert_read = wire.BatchCommand(tuple(next(jpki.read_certificate())), epoch=bridge.epoch)
        read = bridge.session.handle(cert_read)
        assert isinstance(read, wire.Result)
        first_chunk = read.responses[2]  # SELECT applet, SELECT EF, READ BINARY...
        assert first_chunk.sw == SW.OK and first_chunk.data == card_file.issued.auth_cert_der[:256]
    finally:
        bridge.transport.close()


def test_a_reset_by_another_application_is_taken_in_stride(
    pcsc_reader: str, card_file: DemoCard
) -> None:
    """Another application resets the card between two of our batches: the next batch
    reconnects to the new card session instead of failing."""
    with PcscTransport(pcsc_reader) as ours:
        assert drive(jpki.read_certificate(), ours) == card_file.issued.auth_cert_der
        with PcscTransport(pcsc_reader, reset_on_close=True) as other:
            drive(jpki.read_pin_tries(), other)
        assert drive(jpki.read_certificate(), ours) == card_file.issued.auth_cert_der
