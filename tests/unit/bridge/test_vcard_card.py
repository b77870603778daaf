"""The virtual card answers every command of shared/docs/jpki-card.md as the real card.

SELECT, READ BINARY, the card quirks (AID prefix, short EF, select MF, logical
channels, secure messaging, extended Le, 6B00), the applets we never touch, the
ISD's GET DATA, and refused commands. PINs and signatures: test_vcard_pins.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.vcard.applets import with_filler
from bridge.vcard.card import ATR, VirtualCard, check_cla
from tests.fixtures.cards import (
    COMMON_AID,
    FACE_AID,
    ISD_AID,
    JPKI_AID,
    JUKI_AID,
    SELECT_COMMON,
    SELECT_FACE,
    SELECT_JPKI,
    SELECT_JUKI,
    SELECT_TEXT,
    TEXT_AID,
    DemoCard,
    run,
    select_ef,
    sw,
    tx,
    verify,
)


def test_power_on_answers_the_atr_and_selects_the_isd(virtual_card: VirtualCard) -> None:
    assert virtual_card.power_on() == bytes.fromhex("3B E0 00 FF 81 31 FE 45 14") == ATR
    assert virtual_card.atr == ATR
    assert virtual_card.selected_applet == "GlobalPlatform ISD"
    virtual_card.power_off()
    assert not virtual_card.powered
    assert virtual_card.selected_applet is None


def test_transmit_powers_on_lazily(card_file: DemoCard) -> None:
    card = card_file.load()
    assert run(card, SELECT_JPKI) == [0x9000]
    assert card.powered


# -- SELECT ------------------------------------------------------------------------------

SELECT_CASES = [
    # (description, APDU, SW, applet selected afterwards)
    ("JPKI exact AID", SELECT_JPKI, 0x9000, "JPKI-AP"),
    ("JPKI, P2 00 (no FCI either)", "00A404000A" + JPKI_AID, 0x9000, "JPKI-AP"),
    ("text helper exact", SELECT_TEXT, 0x9000, "text input helper AP"),
    ("card face exact", SELECT_FACE, 0x9000, "card face AP"),
    ("住基 exact", SELECT_JUKI, 0x9000, "住基AP"),
    ("common exact", SELECT_COMMON, 0x9000, "common card AP"),
    ("ISD exact", "00A4040C07" + ISD_AID, 0x9000, "GlobalPlatform ISD"),
    # The prefix quirk: the first AID (fixed order) that starts with the data wins.
    ("prefix of JPKI", "00A4040C05D392F00026", 0x9000, "JPKI-AP"),
    ("prefix of the D392100031 family", "00A4040C05D392100031", 0x9000, "text input helper AP"),
    ("9-byte prefix", "00A4040C09D39210003100010104", 0x9000, "text input helper AP"),
    ("prefix of common", "00A4040C09D39210003100010101", 0x9000, "common card AP"),
    ("8-byte family prefix", "00A4040C08D392100031000101", 0x9000, "text input helper AP"),
    ("prefix of ISD", "00A4040C05A000000151", 0x9000, "GlobalPlatform ISD"),
    ("prefix too short", "00A4040C04D392F000", 0x6A82, "GlobalPlatform ISD"),
    ("unknown AID", "00A4040C0AD392F000260100000009", 0x6A82, "GlobalPlatform ISD"),
    ("longer than the AID", "00A4040C0B" + JPKI_AID + "00", 0x6A82, "GlobalPlatform ISD"),
    ("DF name without data", "00A4040C", 0x6700, "GlobalPlatform ISD"),
    ("P2 asks for FCP", "00A404040A" + JPKI_AID, 0x6A86, "GlobalPlatform ISD"),
    ("select MF", "00A40000", 0x9000, "GlobalPlatform ISD"),
    ("select MF by 3F00", "00A4000C023F00", 0x9000, "GlobalPlatform ISD"),
    ("P1 00 with another id", "00A4000C02000A", 0x6A82, "GlobalPlatform ISD"),
    ("select by path", "00A4080C04" + "3F00000A", 0x6A86, "GlobalPlatform ISD"),
    ("select child DF", "00A4010C020001", 0x6A86, "GlobalPlatform ISD"),
    ("select parent", "00A4030C", 0x6A86, "GlobalPlatform ISD"),
    ("EF in the ISD", select_ef("000A"), 0x6A82, "GlobalPlatform ISD"),
]


@pytest.mark.parametrize(
    ("apdu", "expected", "applet"),
    [case[1:] for case in SELECT_CASES],
    ids=[case[0] for case in SELECT_CASES],
)
def test_select(virtual_card: VirtualCard, apdu: str, expected: int, applet: str) -> None:
    data, status = tx(virtual_card, apdu)
    assert (data, status) == (b"", expected)
    assert virtual_card.selected_applet == applet


EF_CASES = [
    # JPKI-AP files (jpki-card.md "Files inside JPKI-AP") and a few misses
    *[(SELECT_JPKI, fid, 0x9000) for fid in ("000A", "000B", "0017", "0018", "0001")],
    *[(SELECT_JPKI, fid, 0x9000) for fid in ("0002", "001A", "001B", "0006", "0008")],
    (SELECT_JPKI, "0011", 0x6A82),
    (SELECT_JPKI, "3F00", 0x6A82),
    (SELECT_JPKI, "FFFF", 0x6A82),
    (SELECT_TEXT, "0001", 0x9000),
    (SELECT_TEXT, "0002", 0x9000),
    (SELECT_TEXT, "0011", 0x9000),
    (SELECT_TEXT, "000A", 0x6A82),
]


@pytest.mark.parametrize(("select_ap", "fid", "expected"), EF_CASES)
def test_select_ef(virtual_card: VirtualCard, select_ap: str, fid: str, expected: int) -> None:
    assert run(virtual_card, select_ap, select_ef(fid)) == [0x9000, expected]


@pytest.mark.parametrize("apdu", ["00A4020C01" + "0A", "00A4020C03" + "00000A", "00A4020C"])
def test_select_ef_wrong_length(virtual_card: VirtualCard, apdu: str) -> None:
    assert run(virtual_card, SELECT_JPKI, apdu) == [0x9000, 0x6700]


def test_select_mf_changes_nothing(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    run(virtual_card, SELECT_JPKI, select_ef("000A"))
    assert run(virtual_card, "00A40000") == [0x9000]
    assert virtual_card.selected_applet == "JPKI-AP"
    data, status = tx(virtual_card, "00B0000004")  # still reads the current EF
    assert (data, status) == (card_file.issued.auth_cert_der[:4], 0x9000)


def test_select_another_applet_forgets_the_current_ef(virtual_card: VirtualCard) -> None:
    run(virtual_card, SELECT_JPKI, select_ef("000A"), SELECT_TEXT, SELECT_JPKI)
    assert sw(virtual_card, "00B0000004") == 0x6986


# -- READ BINARY -------------------------------------------------------------------------


def read_ef(card: VirtualCard, size_hint: int = 0x7FFF) -> bytes:
    """Read the current EF in 256-byte chunks until 6B00."""
    out = b""
    while True:
        data, status = tx(card, f"00B0{len(out):04X}00")
        if status == 0x6B00:
            return out
        assert status == 0x9000
        out += data


@pytest.mark.parametrize(("fid", "attr"), [("000A", "auth_cert_der"), ("000B", "auth_ca_der")])
def test_certificate_ef_is_der_then_filler(
    virtual_card: VirtualCard, card_file: DemoCard, fid: str, attr: str
) -> None:
    der = getattr(card_file.issued, attr)
    run(virtual_card, SELECT_JPKI, select_ef(fid))
    head, status = tx(virtual_card, "00B0000004")  # OpenSC reads 4 bytes for the size
    assert status == 0x9000
    assert head[:2] == b"\x30\x82" and int.from_bytes(head[2:4], "big") + 4 == len(der)
    content = read_ef(virtual_card)
    assert content[: len(der)] == der
    assert len(content) % 256 == 0 and len(content) > len(der)
    assert set(content[len(der) :]) == {0xFF}


def test_read_past_end_answers_6b00(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    size = len(with_filler(card_file.issued.auth_cert_der, 256))
    run(virtual_card, SELECT_JPKI, select_ef("000A"))
    assert sw(virtual_card, f"00B0{size:04X}00") == 0x6B00
    assert sw(virtual_card, f"00B0{size + 1:04X}01") == 0x6B00
    assert sw(virtual_card, "00B07FFF01") == 0x6B00
    data, status = tx(virtual_card, f"00B0{size - 10:04X}00")  # starts inside: the rest
    assert (len(data), status) == (10, 0x9000)


@pytest.mark.parametrize(("le_hex", "le"), [("000800", 2048), ("000000", 65536), ("000004", 4)])
def test_extended_le_is_accepted(
    virtual_card: VirtualCard, card_file: DemoCard, le_hex: str, le: int
) -> None:
    content = with_filler(card_file.issued.auth_cert_der, 256)
    run(virtual_card, SELECT_JPKI, select_ef("000A"))
    data, status = tx(virtual_card, "00B00000" + le_hex)
    assert (data, status) == (content[:le], 0x9000)


READ_ERRORS = [
    ("no current EF", [SELECT_JPKI], "00B0000004", 0x6986),
    ("no Le", [SELECT_JPKI, select_ef("000A")], "00B00000", 0x6700),
    ("data instead of Le", [SELECT_JPKI, select_ef("000A")], "00B0000001FF", 0x6700),
    ("PIN EF", [SELECT_JPKI, select_ef("0018")], "00B0000004", 0x6981),
    ("key EF", [SELECT_JPKI, select_ef("0017")], "00B0000004", 0x6981),
    ("signing cert without password", [SELECT_JPKI, select_ef("0001")], "00B0000004", 0x6982),
    ("short EF of signing cert", [SELECT_JPKI], "00B0810004", 0x6982),
    ("short EF 0", [SELECT_JPKI], "00B0800004", 0x6A86),
    ("short EF, bad P1 bits", [SELECT_JPKI], "00B0AA0004", 0x6A86),
    ("short EF missing", [SELECT_JPKI], "00B09E0004", 0x6A82),
    ("short EF key", [SELECT_JPKI], "00B0970004", 0x6981),
    ("READ BINARY in the ISD", [], "00B0000004", 0x6D00),
    ("short EF in the ISD", [], "00B08A0004", 0x6D00),
    ("My Number without text PIN", [SELECT_TEXT], "00B0810011", 0x6982),
    ("attributes without text PIN", [SELECT_TEXT, select_ef("0002")], "00B0000007", 0x6982),
    ("card face image", [SELECT_FACE, select_ef("0002")], "00B0000010", 0x6982),
    ("住基 data", [SELECT_JUKI], "00B0810010", 0x6982),
]


@pytest.mark.parametrize(
    ("setup", "apdu", "expected"),
    [case[1:] for case in READ_ERRORS],
    ids=[case[0] for case in READ_ERRORS],
)
def test_read_binary_errors(
    virtual_card: VirtualCard, setup: list[str], apdu: str, expected: int
) -> None:
    assert run(virtual_card, *setup) == [0x9000] * len(setup)
    assert tx(virtual_card, apdu) == (b"", expected)


def test_short_ef_read_bypasses_select(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    run(virtual_card, SELECT_JPKI)
    assert tx(virtual_card, "00B08A0004") == (card_file.issued.auth_cert_der[:4], 0x9000)
    assert tx(virtual_card, "00B08B0004") == (card_file.issued.auth_ca_der[:4], 0x9000)
    assert tx(virtual_card, "00B0860000")[1] == 0x9000
    # The short-EF-referenced file became the current EF (ISO 7816-4).
    assert tx(virtual_card, "00B0000004") == (b"JPKI", 0x9000)


def test_token_info_and_ef_0008(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    run(virtual_card, SELECT_JPKI, select_ef("0006"))
    info, status = tx(virtual_card, "00B0000000")
    assert status == 0x9000 and len(info) == 160
    assert info[:32] == b"JPKIAPICCTOKEN2".ljust(32, b" ")
    run(virtual_card, select_ef("0008"))
    assert tx(virtual_card, "00B0000000") == (bytes.fromhex("8F8F00"), 0x9000)


def test_signing_certificate_needs_the_signing_password(
    virtual_card: VirtualCard, card_file: DemoCard
) -> None:
    der = card_file.issued.sign_cert_der
    run(virtual_card, SELECT_JPKI, select_ef("0001"))
    assert sw(virtual_card, "00B0000004") == 0x6982
    assert run(virtual_card, verify(card_file.sign_password, "9B")) == [0x9000]
    run(virtual_card, select_ef("0001"))
    assert read_ef(virtual_card)[: len(der)] == der
    run(virtual_card, select_ef("0002"))
    assert (
        read_ef(virtual_card)[: len(card_file.issued.sign_ca_der)] == card_file.issued.sign_ca_der
    )


# -- the applets we never touch: reachable on the card, which is why a firewall exists ---


def test_my_number_by_prefix_and_short_ef(virtual_card: VirtualCard, card_file: DemoCard) -> None:
    my_number = card_file.issued.my_number.encode("ascii")
    # Prefix SELECT, short-EF VERIFY of the text helper PIN (EF 0011), short-EF READ.
    assert run(virtual_card, "00A4040C05D392100031", verify(card_file.pin, "91")) == [0x9000] * 2
    data, status = tx(virtual_card, "00B0810011")
    assert status == 0x9000
    assert data[:15] == b"\xff\x10\x0c" + my_number
    data, status = tx(virtual_card, "00B0820000")
    assert status == 0x9000 and data[:2] == b"\xff\x20"
    assert card_file.issued.holder["name"].encode("utf-8") in data


def test_common_card_ap_needs_no_pin(virtual_card: VirtualCard) -> None:
    data = virtual_card.data
    run(virtual_card, SELECT_COMMON)
    info, status = tx(virtual_card, "00B0810000")
    assert status == 0x9000
    assert data.card_serial.encode() in info and data.municipality_code.encode() in info


GET_DATA_CASES = [
    ("80CA9F7F00", 0x9000, b"\x9f\x7f\x2a"),
    ("00CA9F7F00", 0x9000, b"\x9f\x7f\x2a"),
    ("80CA004500", 0x9000, b"\x45"),
    ("80CA004200", 0x9000, b"\x42"),
    ("80CA006600", 0x9000, b"\x66"),
    ("80CA00CF00", 0x6A88, b""),
    ("80CA0066", 0x6700, b""),
    ("80CA00660100", 0x6700, b""),
    ("8050000008000000000000000000", 0x6982, b""),  # INITIALIZE UPDATE
    ("80F2400002" + "4F0000", 0x6982, b""),  # GET STATUS
    ("80E602000A" + "00" * 10, 0x6982, b""),  # INSTALL
    ("0020008004" + "31323334", 0x6D00, b""),  # no PIN in the ISD
]


@pytest.mark.parametrize(("apdu", "expected", "prefix"), GET_DATA_CASES)
def test_isd_commands(virtual_card: VirtualCard, apdu: str, expected: int, prefix: bytes) -> None:
    data, status = tx(virtual_card, apdu)  # the ISD is selected at power-up
    assert status == expected
    assert data.startswith(prefix) and bool(data) == bool(prefix)


def test_get_data_returns_card_id_municipality_expiry(virtual_card: VirtualCard) -> None:
    data, _ = tx(virtual_card, "80CA006600")
    card = virtual_card.data
    for value in (card.card_serial, card.municipality_code, card.card_expiry.replace("-", "")):
        assert value.encode() in data
    assert tx(virtual_card, "80CA004500")[0][2:] == card.card_serial.encode()


# -- class bytes and instructions ----------------------------------------------------


CLA_CASES = [
    *[(cla, 0x6881) for cla in (0x01, 0x02, 0x03, 0x05, 0x0B, 0x40, 0x41, 0x4F, 0x60, 0x7F)],
    *[(cla, 0x6881) for cla in (0x81, 0x83)],
    *[(cla, 0x6882) for cla in (0x04, 0x08, 0x0C, 0x84, 0x88, 0x8C)],
    *[(cla, 0x6E00) for cla in (0x10, 0x20, 0x30, 0x90, 0xA0, 0xB0, 0xC0, 0xE0, 0xFF)],
]


@pytest.mark.parametrize(("cla", "expected"), CLA_CASES, ids=[f"{c:02X}" for c, _ in CLA_CASES])
def test_class_bytes(virtual_card: VirtualCard, cla: int, expected: int) -> None:
    assert check_cla(cla) == expected
    assert sw(virtual_card, f"{cla:02X}" + SELECT_JPKI[2:]) == expected
    assert virtual_card.selected_applet == "GlobalPlatform ISD"  # nothing happened


@pytest.mark.parametrize("cla", [0x00, 0x80])
def test_accepted_classes(cla: int) -> None:
    assert check_cla(cla) is None


INS_CASES = [
    # (description, APDU sent with JPKI-AP and EF 000A selected, SW)
    ("GET CHALLENGE", "0084000008", 0x9000),
    ("GET CHALLENGE, other Le", "0084000010", 0x6700),
    ("GET CHALLENGE, bad P1", "0084010008", 0x6A86),
    ("INTERNAL AUTHENTICATE", "0088000010" + "00" * 16 + "00", 0x6982),
    ("CHANGE REFERENCE DATA, no VERIFY", "0024019804" + "35363738", 0x6982),
    ("80 A2", "80A2000000", 0x6982),
    ("80 AE", "80AE000000", 0x6982),
    ("UPDATE BINARY", "00D6000004" + "00000000", 0x6982),
    ("WRITE BINARY", "00D0000004" + "00000000", 0x6982),
    ("ERASE BINARY", "000E0000", 0x6982),
    ("UPDATE RECORD", "00DC010404" + "00000000", 0x6982),
    ("APPEND RECORD", "00E2000004" + "00000000", 0x6982),
    ("CREATE FILE", "00E0000002" + "6200", 0x6982),
    ("DELETE FILE", "00E4000002" + "000A", 0x6982),
    ("ACTIVATE", "00440000", 0x6982),
    ("DEACTIVATE", "00040000", 0x6982),
    ("TERMINATE DF", "00E60000", 0x6982),
    ("RESET RETRY COUNTER", "002C0080", 0x6982),
    ("GENERATE KEY PAIR", "0046000000", 0x6982),
    ("GET DATA outside the ISD", "00CA9F7F00", 0x6D00),
    ("GET RESPONSE", "00C0000000", 0x6D00),
    ("ISO PSO: CDS", "002A9E9A33" + "00" * 51 + "00", 0x6D00),
    ("READ BINARY with CLA 80", "80B0000004", 0x6D00),
    ("SELECT with CLA 80", "80A4040C0A" + JPKI_AID, 0x6D00),
    ("VERIFY with CLA 80", "80200080", 0x6D00),
    ("signature with CLA 00", "002A008033" + "00" * 51 + "00", 0x6D00),
    ("unknown INS", "00120000", 0x6D00),
    ("unknown proprietary INS", "80FE0000", 0x6D00),
]


@pytest.mark.parametrize(
    ("apdu", "expected"), [c[1:] for c in INS_CASES], ids=[c[0] for c in INS_CASES]
)
def test_instructions(
    virtual_card: VirtualCard, card_file: DemoCard, apdu: str, expected: int
) -> None:
    before = card_file.path.read_bytes()
    run(virtual_card, SELECT_JPKI, select_ef("000A"))
    data, status = tx(virtual_card, apdu)
    assert status == expected
    assert len(data) == (8 if expected == 0x9000 else 0)
    # Nothing changed: the EF still reads the certificate, the card file is untouched.
    run(virtual_card, SELECT_JPKI, select_ef("000A"))
    assert tx(virtual_card, "00B0000004")[0] == card_file.issued.auth_cert_der[:4]
    assert card_file.path.read_bytes() == before


@pytest.mark.parametrize(
    "raw",
    ["", "00", "00A4", "00A404", "00A4040C05D3", "00A4040C0AD392F0002601000000", "00B000000001"],
)
def test_malformed_bytes_answer_6700(virtual_card: VirtualCard, raw: str) -> None:
    assert tx(virtual_card, raw) == (b"", 0x6700)


@pytest.mark.parametrize(
    "aid",
    [JPKI_AID, TEXT_AID, FACE_AID, JUKI_AID, COMMON_AID],
    ids=["jpki", "text", "face", "juki", "common"],
)
def test_every_applet_is_selectable_by_its_own_aid(virtual_card: VirtualCard, aid: str) -> None:
    assert sw(virtual_card, "00A4040C0A" + aid) == 0x9000


KNOWN_SWS = {
    0x9000, 0x6700, 0x6881, 0x6882, 0x6981, 0x6982, 0x6984, 0x6986, 0x6A80, 0x6A82,
    0x6A86, 0x6A88, 0x6B00, 0x6D00, 0x6E00,
}  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prefix=st.sampled_from(["", SELECT_JPKI, SELECT_TEXT, SELECT_COMMON]),
    raw=st.one_of(
        st.binary(max_size=300),
        st.tuples(
            st.sampled_from([0x00, 0x80, 0x01, 0x0C, 0x10]),
            st.integers(0, 255),
            st.integers(0, 255),
            st.integers(0, 255),
            st.binary(max_size=40),
        ).map(lambda t: bytes(t[:4]) + (bytes([len(t[4])]) + t[4] if t[4] else b"")),
    ),
)
def test_any_bytes_get_a_known_answer_and_change_nothing(
    virtual_card: VirtualCard, prefix: str, raw: bytes
) -> None:
    """Except VERIFY and CHANGE REFERENCE DATA, no command changes a counter or a PIN."""
    data = virtual_card.data
    pins = (data.auth_pin, data.sign_password, data.text_pin)
    virtual_card.power_on()
    if prefix:
        sw(virtual_card, prefix)
    before = [(p.value, p.tries_left) for p in pins]
    answer = virtual_card.transmit(raw)
    assert len(answer) >= 2
    status = int.from_bytes(answer[-2:], "big")
    assert status in KNOWN_SWS or status & 0xFFF0 == 0x63C0
    if len(raw) < 2 or raw[1] not in (0x20, 0x24):
        assert [(p.value, p.tries_left) for p in pins] == before
