"""PIN counters (63Cx, 63C0, 6984), their persistence, verified states and signatures."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.jpki import sha256_digest_info
from bridge.vcard.card import VirtualCard
from tests.fixtures.cards import (
    SELECT_JPKI,
    SELECT_TEXT,
    DemoCard,
    MakeCardFile,
    run,
    select_ef,
    sw,
    tx,
    verify,
)

TRIES = "00200080"  # VERIFY without data: tries left, spending none
AUTH_PIN_EF = select_ef("0018")
SIGN_PW_EF = select_ef("001B")


def stored_tries(card_file: DemoCard) -> dict[str, int]:
    """The counters as the card file on disk holds them."""
    doc = json.loads(card_file.path.read_text("utf-8"))
    return {
        "auth": doc["jpki"]["auth"]["pin"]["tries_left"],
        "sign": doc["jpki"]["sign"]["password"]["tries_left"],
        "text": doc["text_helper"]["pin"]["tries_left"],
    }


def public_key(der: bytes) -> rsa.RSAPublicKey:
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


# -- the tries-left query and VERIFY ------------------------------------------------------

PIN_SCRIPTS = [
    # (description, APDUs after SELECT JPKI + SELECT EF 0018, expected SWs)
    ("tries left", [TRIES], [0x63C3]),
    ("right PIN", [verify("1234"), TRIES], [0x9000, 0x9000]),
    ("wrong PIN", [verify("9999"), TRIES], [0x63C2, 0x63C2]),
    (
        "lock-out",
        [verify("9999"), verify("9999"), verify("9999"), TRIES, verify("1234")],
        [0x63C2, 0x63C1, 0x63C0, 0x6984, 0x6984],
    ),
    (
        "right PIN resets the counter",
        [verify("0000"), verify("1234"), TRIES],
        [0x63C2, 0x9000, 0x9000],
    ),
    (
        "wrong PIN clears the verified state",
        [verify("1234"), verify("0000"), TRIES],
        [0x9000, 0x63C2, 0x63C2],
    ),
    ("3 digits spend a try", [verify("123")], [0x63C2]),
    ("5 digits spend a try", [verify("12345")], [0x63C2]),
    ("padded PIN spends a try", ["0020008008" + "31323334FFFFFFFF"], [0x63C2]),
    ("non-ASCII data spends a try", ["0020008004" + "01020304"], [0x63C2]),
    ("short-EF VERIFY", [verify("1234", "98"), TRIES], [0x9000, 0x9000]),
    ("short-EF tries query", ["00200098"], [0x63C3]),
    ("bad P1", ["0020010004" + "31323334"], [0x6A86]),
    ("global reference P2", ["0020000004" + "31323334"], [0x6A86]),
    ("bad P2 bits", ["002000A0"], [0x6A86]),
    ("short EF of a certificate", ["0020008A"], [0x6A88]),
    ("short EF missing", ["0020009E"], [0x6A88]),
    ("with Le", ["002000800431323334" + "00"], [0x6700]),
]


@pytest.mark.parametrize(
    ("apdus", "expected"), [c[1:] for c in PIN_SCRIPTS], ids=[c[0] for c in PIN_SCRIPTS]
)
def test_auth_pin(virtual_card: VirtualCard, apdus: list[str], expected: list[int]) -> None:
    assert run(virtual_card, SELECT_JPKI, AUTH_PIN_EF) == [0x9000, 0x9000]
    assert run(virtual_card, *apdus) == expected


@pytest.mark.parametrize(
    ("setup", "expected"),
    [([SELECT_JPKI], 0x6986), ([SELECT_JPKI, select_ef("000A")], 0x6A88)],
    ids=["no current EF", "current EF is a certificate"],
)
def test_verify_needs_a_pin_ef(virtual_card: VirtualCard, setup: list[str], expected: int) -> None:
    run(virtual_card, *setup)
    assert sw(virtual_card, verify("1234")) == expected


def test_counters_persist_in_the_card_file(card_file: DemoCard) -> None:
    card = card_file.load()
    run(card, SELECT_JPKI, AUTH_PIN_EF)
    assert sw(card, verify("0000")) == 0x63C2
    assert stored_tries(card_file)["auth"] == 2  # written before the card answered
    again = card_file.load()  # another session, another process
    assert run(again, SELECT_JPKI, AUTH_PIN_EF, TRIES) == [0x9000, 0x9000, 0x63C2]
    assert run(again, verify("0000"), verify("0000")) == [0x63C1, 0x63C0]
    third = card_file.load()
    assert run(third, SELECT_JPKI, AUTH_PIN_EF, TRIES, verify("1234")) == [0x9000] * 2 + [
        0x6984,
        0x6984,
    ]
    assert stored_tries(card_file) == {"auth": 0, "sign": 5, "text": 3}
    assert stat.S_IMODE(os.stat(card_file.path).st_mode) == 0o600
    assert [p.name for p in card_file.path.parent.iterdir()] == [card_file.path.name]


def test_right_pin_restores_the_stored_counter(card_file: DemoCard) -> None:
    card = card_file.load()
    run(card, SELECT_JPKI, AUTH_PIN_EF, verify("0000"), verify("1234"))
    assert stored_tries(card_file)["auth"] == 3


def test_right_pin_on_full_counter_does_not_write(card_file: DemoCard) -> None:
    mtime = card_file.path.stat().st_mtime_ns
    card = card_file.load()
    run(card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"))
    assert card_file.path.stat().st_mtime_ns == mtime


def test_card_issued_locked(make_card_file: MakeCardFile, tmp_path: Path) -> None:
    card = make_card_file(tmp_path / "locked.json", locked=True).load()
    assert run(card, SELECT_JPKI, AUTH_PIN_EF, TRIES, verify("1234")) == [0x9000] * 2 + [
        0x6984,
        0x6984,
    ]
    assert run(card, SIGN_PW_EF, TRIES) == [0x9000, 0x63C5]  # counters are separate


SIGN_PASSWORD_SCRIPTS = [
    ("tries left", [TRIES], [0x63C5]),
    ("right password", [verify("ABC123"), TRIES], [0x9000, 0x9000]),
    ("lower case is wrong", [verify("abc123")], [0x63C4]),
    (
        "lock-out after 5",
        [verify("XXXXXX")] * 5 + [TRIES, verify("ABC123")],
        [0x63C4, 0x63C3, 0x63C2, 0x63C1, 0x63C0, 0x6984, 0x6984],
    ),
    ("short-EF VERIFY", [verify("ABC123", "9B")], [0x9000]),
]


@pytest.mark.parametrize(
    ("apdus", "expected"),
    [c[1:] for c in SIGN_PASSWORD_SCRIPTS],
    ids=[c[0] for c in SIGN_PASSWORD_SCRIPTS],
)
def test_sign_password(virtual_card: VirtualCard, apdus: list[str], expected: list[int]) -> None:
    run(virtual_card, SELECT_JPKI, SIGN_PW_EF)
    assert run(virtual_card, *apdus) == expected


def test_text_helper_pin(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    run(virtual_card, SELECT_TEXT, select_ef("0011"))
    assert run(virtual_card, TRIES, verify("0000"), "00200091") == [0x63C3, 0x63C2, 0x63C2]
    assert stored_tries(card_file) == {"auth": 3, "sign": 5, "text": 2}


# -- verified states -----------------------------------------------------------------------


def test_verified_state_is_per_applet(virtual_card: VirtualCard) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"))
    # Re-selecting the same applet keeps it (ISO 7816-4: lost only when leaving the DF).
    assert run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, TRIES) == [0x9000, 0x9000, 0x9000]
    # The text helper has its own PIN, not verified; leaving JPKI-AP clears its state.
    assert run(virtual_card, SELECT_TEXT, "00200091") == [0x9000, 0x63C3]
    assert run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, TRIES) == [0x9000, 0x9000, 0x63C3]


@pytest.mark.parametrize("reset", ["power_on", "reset", "power_off"])
def test_power_cycle_clears_verified_state(virtual_card: VirtualCard, reset: str) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), TRIES)
    getattr(virtual_card, reset)()
    assert run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, TRIES) == [0x9000, 0x9000, 0x63C3]


def test_select_mf_keeps_verified_state(virtual_card: VirtualCard) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"))
    assert run(virtual_card, "00A40000", TRIES) == [0x9000, 0x9000]


# -- COMPUTE DIGITAL SIGNATURE ---------------------------------------------------------------

DIGEST_INFO = sha256_digest_info(b"nonce and origin")
SIGN = "802A0080" + f"{len(DIGEST_INFO):02X}" + DIGEST_INFO.hex() + "00"


def test_signature_needs_the_pin(virtual_card: VirtualCard) -> None:
    assert run(virtual_card, SELECT_JPKI, select_ef("0017"), SIGN) == [0x9000, 0x9000, 0x6982]


def test_signature_after_verify(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), select_ef("0017"))
    signature, status = tx(virtual_card, SIGN)
    assert status == 0x9000 and len(signature) == 256
    public_key(card_file.issued.auth_cert_der).verify(
        signature, b"nonce and origin", padding.PKCS1v15(), hashes.SHA256()
    )


def test_signature_pads_the_given_bytes_raw(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    message = b"any DigestInfo, or anything up to k - 11 bytes"
    run(virtual_card, SELECT_JPKI, verify("1234", "98"))
    signature, status = tx(virtual_card, f"802A0097{len(message):02X}{message.hex()}00")
    assert status == 0x9000  # short-EF key reference: no SELECT EF 0017 needed (quirk)
    key = public_key(card_file.issued.auth_cert_der)
    assert key.recover_data_from_signature(signature, padding.PKCS1v15(), None) == message


def test_signing_key_needs_the_signing_password(
    virtual_card: VirtualCard, card_file: DemoCard
) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), select_ef("001A"))
    assert sw(virtual_card, SIGN) == 0x6982  # the auth PIN does not open the signing key
    run(virtual_card, SIGN_PW_EF, verify("ABC123"), select_ef("001A"))
    signature, status = tx(virtual_card, SIGN)
    assert status == 0x9000
    public_key(card_file.issued.sign_cert_der).verify(
        signature, b"nonce and origin", padding.PKCS1v15(), hashes.SHA256()
    )


SIGN_ERRORS = [
    ("P1 other than 00", "802A0180" + SIGN[8:], 0x6A86),
    ("no data", "802A008000", 0x6700),
    ("no Le", SIGN[:-2], 0x6700),
    ("Le too small", SIGN[:-2] + "80", 0x6700),
    ("too long for the key", "802A0080F6" + "00" * 246 + "00", 0x6700),
    ("P2 global", "802A0000" + SIGN[8:], 0x6A86),
    ("P2 names a PIN", "802A0098" + SIGN[8:], 0x6A88),
    ("P2 names nothing", "802A009E" + SIGN[8:], 0x6A88),
]


@pytest.mark.parametrize(
    ("apdu", "expected"), [c[1:] for c in SIGN_ERRORS], ids=[c[0] for c in SIGN_ERRORS]
)
def test_signature_errors(virtual_card: VirtualCard, apdu: str, expected: int) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), select_ef("0017"))
    assert tx(virtual_card, apdu) == (b"", expected)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [([], 0x6986), ([select_ef("000A")], 0x6A88)],
    ids=["no current EF", "current EF is a certificate"],
)
def test_signature_needs_a_key_ef(
    virtual_card: VirtualCard, setup: list[str], expected: int
) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), SELECT_JPKI, *setup)
    assert sw(virtual_card, SIGN) == expected


def test_extended_le_signature(virtual_card: VirtualCard) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), select_ef("0017"))
    apdu = "802A008000" + f"{len(DIGEST_INFO):04X}" + DIGEST_INFO.hex() + "0100"
    data, status = tx(virtual_card, apdu)
    assert (len(data), status) == (256, 0x9000)


def test_pace(card_file: DemoCard) -> None:
    card = card_file.load(apdu_delay_s=0.01, signature_time_s=0.05)
    card.power_on()
    started = time.perf_counter()
    run(card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), select_ef("0017"))
    assert time.perf_counter() - started >= 0.039
    started = time.perf_counter()
    assert sw(card, SIGN) == 0x9000
    assert time.perf_counter() - started >= 0.059


# -- CHANGE REFERENCE DATA --------------------------------------------------------------------


def test_change_pin_after_verify(card_file: DemoCard) -> None:
    card = card_file.load()
    run(card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"))
    assert sw(card, "0024018004" + b"5678".hex()) == 0x9000
    again = card_file.load()
    assert run(again, SELECT_JPKI, verify("1234", "98"), verify("5678", "98")) == [
        0x9000,
        0x63C2,
        0x9000,
    ]


CHANGE_ERRORS = [
    ("without VERIFY", [], "0024018004" + b"5678".hex(), 0x6982),
    ("old and new", [verify("1234")], "0024008008" + b"12345678".hex(), 0x6A86),
    ("bad format", [verify("1234")], "0024018003" + b"567".hex(), 0x6A80),
    ("letters", [verify("1234")], "0024018004" + b"ABCD".hex(), 0x6A80),
    ("no data", [verify("1234")], "00240180", 0x6700),
    ("locked", [verify("0000")] * 3, "0024018004" + b"5678".hex(), 0x6984),
]


@pytest.mark.parametrize(
    ("setup", "apdu", "expected"),
    [c[1:] for c in CHANGE_ERRORS],
    ids=[c[0] for c in CHANGE_ERRORS],
)
def test_change_pin_errors(
    virtual_card: VirtualCard, card_file: DemoCard, setup: list[str], apdu: str, expected: int
) -> None:
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, *setup)
    assert sw(virtual_card, apdu) == expected
    assert virtual_card.data.auth_pin.value == "1234"


def test_pin_values_never_reach_the_logs(
    virtual_card: VirtualCard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    run(virtual_card, SELECT_JPKI, AUTH_PIN_EF, verify("1234"), verify("9876"))
    assert "1234" not in caplog.text and "9876" not in caplog.text
    # The PIN objects are where a PIN could show (the whole card's repr holds random
    # certificate bytes, where four digits can turn up by chance).
    assert "1234" not in repr(virtual_card.data.auth_pin)
    assert "1234" not in repr(virtual_card.data.text_pin)
    assert "1234" not in repr(virtual_card.data.sign_password)


def test_a_failed_write_answers_6f00_and_keeps_the_try_spent(card_file: DemoCard) -> None:
    def disk_full() -> None:
        raise OSError("disk full")

    card = VirtualCard(card_file.load().data, on_change=disk_full)
    run(card, SELECT_JPKI, AUTH_PIN_EF)
    assert sw(card, verify("0000")) == 0x6F00  # transmit never raises
    assert card.data.auth_pin.tries_left == 2  # never a free try
    assert sw(card, TRIES) == 0x63C2
