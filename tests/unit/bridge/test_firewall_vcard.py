"""The firewall in front of the virtual card: the driver passes, the card's quirks don't.

Every attack here works on the bare virtual card (which answers as the real card does,
quirks included); through the firewall, the first dangerous command is refused and
nothing of it reaches the card.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.apdu import SW, Command, Response, parse_command, parse_response
from bridge.errors import Code, CommandRefused, PINGuardRefused
from bridge.firewall import Firewall, filter_batch, run_sealed_verify
from bridge.jpki import (
    read_certificate,
    read_pin_tries,
    sha256_digest_info,
    sign_digest_info,
    verify_and_sign,
    verify_pin,
)
from bridge.lasttry import LastTryRecords
from bridge.transport import Batch, drive
from bridge.vcard.card import VirtualCard
from tests.fixtures.cards import (
    COMMON_AID,
    SELECT_COMMON,
    SELECT_JPKI,
    SELECT_TEXT,
    TEXT_AID,
    DemoCard,
    MakeCardFile,
    select_ef,
    tx,
    verify,
)


class FirewalledReader:
    """The bridge's path to a card, as a `Transport`: firewall first, then the card."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.fw = Firewall()
        self.sent: list[bytes] = []
        card.power_on()

    def send(self, command: Command) -> Response:
        raw = command.encode()
        self.sent.append(raw)
        return parse_response(self.card.transmit(raw))

    def transmit(self, batch: Batch) -> list[Response]:
        return filter_batch(self.fw, batch, self.send)

    def raw(self, apdus: list[str]) -> list[Response]:
        """Send hex APDUs one by one through the firewall; stop at the first refusal."""
        out = []
        for apdu in apdus:
            decision = self.fw.check(bytes.fromhex(apdu))
            if not decision.allowed:
                raise CommandRefused(decision.reason)
            command = parse_command(bytes.fromhex(apdu))
            response = self.send(command)
            self.fw.observe(command, response)
            out.append(response)
        return out


def counters(card: VirtualCard) -> tuple[int, int, int]:
    data = card.data
    return data.auth_pin.tries_left, data.sign_password.tries_left, data.text_pin.tries_left


@pytest.fixture
def reader(card_file: DemoCard) -> FirewalledReader:
    return FirewalledReader(card_file.load())


def public_key(der: bytes) -> rsa.RSAPublicKey:
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


# -- the platform driver's real operations pass --------------------------------------


def test_read_certificates_pass(reader: FirewalledReader, card_file: DemoCard) -> None:
    assert drive(read_certificate(), reader) == card_file.issued.auth_cert_der
    assert drive(read_certificate(ef=0x000B), reader) == card_file.issued.auth_ca_der


def test_read_pin_tries_passes(reader: FirewalledReader) -> None:
    assert drive(read_pin_tries(), reader) == 3


def test_sealed_verify_then_sign_passes(reader: FirewalledReader, card_file: DemoCard) -> None:
    tries, answer = run_sealed_verify(reader.fw, card_file.pin, confirmed=False, send=reader.send)
    assert (tries, answer.sw) == (3, SW.OK)
    digest_info = sha256_digest_info(b"login nonce")
    signature = drive(sign_digest_info(digest_info), reader)
    public_key(card_file.issued.auth_cert_der).verify(
        signature, b"login nonce", padding.PKCS1v15(), hashes.SHA256()
    )
    assert counters(reader.card) == (3, 5, 3)
    assert drive(read_pin_tries(), reader) is None  # verified in this card session


def test_sign_without_verify_reaches_the_card_and_fails_there(reader: FirewalledReader) -> None:
    with pytest.raises(Exception, match="PIN not verified"):
        drive(sign_digest_info(sha256_digest_info(b"x")), reader)


@pytest.mark.parametrize(
    "op",
    [
        lambda: verify_pin("1234"),
        lambda: verify_and_sign("1234", sha256_digest_info(b"x")),
    ],
    ids=["verify_pin", "verify_and_sign"],
)
def test_raw_verify_batches_are_refused(reader: FirewalledReader, op: object) -> None:
    """A VERIFY with data only comes from the sealed-PIN command, never from a batch."""
    with pytest.raises(CommandRefused, match="sealed-PIN"):
        drive(op(), reader)  # type: ignore[operator]
    assert not any(raw.startswith(bytes.fromhex("0020008004")) for raw in reader.sent)
    assert counters(reader.card) == (3, 5, 3)


# -- the card's quirks and the commands we never send ----------------------------------

MY_NUMBER_VIA_PREFIX = ["00A4040C05D392100031", verify("1234", "91"), "00B0810000"]
ATTACKS = {
    # The text input helper AP: the My Number (EF 0001) behind the text PIN.
    "prefix AID, short-EF VERIFY and READ": MY_NUMBER_VIA_PREFIX,
    "exact text-helper AID": [SELECT_TEXT, select_ef("0011"), verify("1234"), "00B0810000"],
    "9-byte prefix": ["00A4040C09D39210003100010104", select_ef("0001"), "00B0000000"],
    "text helper, P2 00": ["00A404000A" + TEXT_AID, "00B0810000"],
    "text helper with Le (case 4)": ["00A4040C0A" + TEXT_AID + "00", "00B0810000"],
    "text helper, extended": ["00A4040C00000A" + TEXT_AID, "00B0810000"],
    "text helper on channel 1": ["01A4040C0A" + TEXT_AID, "01B0810000"],
    "text helper with SM": ["0CA4040C0A" + TEXT_AID, "0CB0810000"],
    # The common card AP gives the card serial without any PIN.
    "common card AP": [SELECT_COMMON, select_ef("0001"), "00B0000000"],
    "common card AP, prefix": ["00A4040C09" + COMMON_AID[:18], "00B0810000"],
    # The ISD at power-up: GET DATA returns card serial, municipality, expiry.
    "ISD GET DATA card data": ["00CA006600"],
    "ISD GET DATA CPLC": ["80CA9F7F00"],
    # Inside JPKI-AP: the signing side and the token info, by SELECT or short EF.
    "token info by short EF": [SELECT_JPKI, "00B0860000"],
    "token info by SELECT": [SELECT_JPKI, select_ef("0006"), "00B0000000"],
    "signing CA cert": [SELECT_JPKI, select_ef("0002"), "00B0000000"],
    "signing cert by short EF": [SELECT_JPKI, "00B0810000"],
    "signing password by short EF": [SELECT_JPKI, verify("ABC124", "9B")],
    "signing password tries": [SELECT_JPKI, "0020009B"],
    "signing key by short EF": [SELECT_JPKI, "802A009A33" + sha256_digest_info(b"").hex() + "00"],
    "read the PIN EF": [SELECT_JPKI, select_ef("0018"), "00B0000000"],
    "read the key EF": [SELECT_JPKI, select_ef("0017"), "00B0000000"],
    "raw VERIFY": [SELECT_JPKI, select_ef("0018"), verify("0000")],
    "VERIFY, extended": [SELECT_JPKI, select_ef("0018"), "0020008000000430303030"],
    "CHANGE REFERENCE DATA": [SELECT_JPKI, select_ef("0018"), "002401800439393939"],
    "select MF then read": [SELECT_JPKI, select_ef("000A"), "00A40000", "00B0000000"],
    "INTERNAL AUTHENTICATE": [SELECT_JPKI, "0088000020" + "00" * 32 + "00"],
    "GET CHALLENGE": [SELECT_JPKI, "0084000008"],
    "80 A2": [SELECT_JPKI, "80A2000000"],
    "80 AE": [SELECT_JPKI, "80AE000000"],
    "UPDATE BINARY": [SELECT_JPKI, select_ef("000A"), "00D6000001FF"],
    "malformed": [SELECT_JPKI, "00A4020C03000A"],
}


@pytest.mark.parametrize("apdus", list(ATTACKS.values()), ids=list(ATTACKS))
def test_attacks_are_refused_before_the_card(reader: FirewalledReader, apdus: list[str]) -> None:
    with pytest.raises(CommandRefused) as err:
        reader.raw(apdus)
    assert err.value.code is Code.REFUSED
    # Only the allowed prefix of the attack (SELECT JPKI / EF) reached the card.
    assert all(raw.hex().upper() in {SELECT_JPKI, *ALLOWED_PREFIX} for raw in reader.sent)
    assert reader.card.selected_applet in {"JPKI-AP", "GlobalPlatform ISD"}
    assert counters(reader.card) == (3, 5, 3)


ALLOWED_PREFIX = {select_ef(f) for f in ("000A", "000B", "0017", "0018")}


def test_the_attacks_are_real_on_the_bare_card(card_file: DemoCard) -> None:
    """Without the firewall, the prefix quirk and short-EF forms give the My Number."""
    card = card_file.load()
    card.power_on()
    data = b""
    for apdu in MY_NUMBER_VIA_PREFIX:
        data, sw = tx(card, apdu)
        assert sw == 0x9000
    assert card.data.my_number.encode() in data
    card.power_on()
    assert card.data.card_serial.encode() in tx(card, "00CA006600")[0]


def test_reset_on_insert(reader: FirewalledReader) -> None:
    reader.raw([SELECT_JPKI, select_ef("000A"), "00B0000004"])
    reader.card.power_on()  # a new card session: the card's selection is the ISD again
    reader.fw.reset()
    with pytest.raises(CommandRefused):
        reader.raw(["00B0000004"])


# -- the PIN guard ----------------------------------------------------------------------


def guarded(make_card_file: MakeCardFile, tmp_path: Path, **kw: object) -> FirewalledReader:
    return FirewalledReader(make_card_file(tmp_path / "c.json", **kw).load())  # type: ignore[arg-type]


@pytest.mark.parametrize("confirmed", [False, True])
def test_last_try_on_a_card_never_taken_off_is_refused(
    make_card_file: MakeCardFile, tmp_path: Path, confirmed: bool
) -> None:
    r = guarded(make_card_file, tmp_path, auth_tries_left=1)
    with pytest.raises(PINGuardRefused) as err:
        run_sealed_verify(r.fw, "1234", confirmed=confirmed, send=r.send)
    assert (err.value.code, err.value.tries_left) == (Code.PIN_RETAP, 1)
    assert r.sent[-1] == bytes.fromhex("00200080")
    assert counters(r.card)[0] == 1


def test_last_try_after_a_retap_with_confirmation_goes_once(
    make_card_file: MakeCardFile, tmp_path: Path
) -> None:
    records = LastTryRecords()
    records.card_inserted("reader", 1)
    r = guarded(make_card_file, tmp_path, auth_tries_left=1)
    r.fw = Firewall(records.card("reader", 1))
    with pytest.raises(PINGuardRefused) as first:  # one try left seen now, in epoch 1
        run_sealed_verify(r.fw, "9999", confirmed=True, send=r.send)
    assert first.value.code is Code.PIN_RETAP
    # Off the reader and back: a new card session (power-up), a new epoch and firewall.
    records.card_removed("reader", 1)
    r.card.power_on()
    records.card_inserted("reader", 2)
    r.fw = Firewall(records.card("reader", 2))
    tries, answer = run_sealed_verify(r.fw, "9999", confirmed=True, send=r.send)
    assert (tries, answer.sw) == (1, 0x63C0)  # the citizen's own last try locked it
    assert counters(r.card)[0] == 0
    # Locked: never again, confirmed or not (6984), and nothing spends a try.
    with pytest.raises(PINGuardRefused) as err:
        run_sealed_verify(r.fw, "1234", confirmed=True, send=r.send)
    assert err.value.code is Code.PIN_LOCKED
    assert r.sent[-1] == bytes.fromhex("00200080")


def test_locked_card_is_never_verified(make_card_file: MakeCardFile, tmp_path: Path) -> None:
    r = guarded(make_card_file, tmp_path, locked=True)
    with pytest.raises(PINGuardRefused):
        run_sealed_verify(r.fw, "1234", confirmed=True, send=r.send)
    assert not any(len(raw) > 5 and raw[1] == 0x20 for raw in r.sent)


def test_wrong_pin_is_not_retried(reader: FirewalledReader) -> None:
    tries, answer = run_sealed_verify(reader.fw, "9999", confirmed=False, send=reader.send)
    assert (tries, answer.sw) == (3, 0x63C2)
    with pytest.raises(CommandRefused):
        reader.fw.sealed_verify("9999", 2, confirmed=False)  # no fresh tries read
    assert counters(reader.card)[0] == 2


# -- never log a PIN --------------------------------------------------------------------


def test_no_pin_in_logs(
    make_card_file: MakeCardFile, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pin = "5937"
    card_file = make_card_file(tmp_path / "p.json", pin=pin)
    r = FirewalledReader(card_file.load())
    run_sealed_verify(r.fw, "8264", confirmed=False, send=r.send)  # wrong, logged?
    run_sealed_verify(r.fw, pin, confirmed=False, send=r.send)
    drive(sign_digest_info(sha256_digest_info(b"x")), r)
    for apdu in (verify(pin), verify(pin, "9B"), "00A4020C0300" + pin.encode().hex()):
        r.fw.check(bytes.fromhex(apdu))
    locked = FirewalledReader(make_card_file(tmp_path / "l.json", pin=pin, locked=True).load())
    with pytest.raises(PINGuardRefused):
        run_sealed_verify(locked.fw, pin, confirmed=True, send=locked.send)
    assert caplog.records, "the refusals above are logged"
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for needle in ("5937", "8264", "35393337", "38323634", "35 39 33 37", "38 32 36 34"):
            assert needle not in text.upper(), record.getMessage()
