"""The APDU firewall's rules, as a table, against its own state machine (no card)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bridge.apdu import SW, Command, Response, parse_command
from bridge.errors import (
    CardStatusError,
    Code,
    CommandRefused,
    NotMyNumberCard,
    PINFormatError,
    PINGuardRefused,
)
from bridge.firewall import Applet, Firewall, filter_batch, run_sealed_verify, tries_from_sw
from bridge.jpki import sha256_digest_info
from bridge.transport import Step

AID = "D392F000260100000001"
TEXT_AID = "D3921000310001010408"
SEL_AP = "00A4040C0A" + AID
DIGEST_INFO = sha256_digest_info(b"challenge").hex()
SIGN = "802A008033" + DIGEST_INFO + "00"
OK = Response(b"", SW.OK)


def fw_in(ef: str | None = None, *, applet: bool = True, last_try: Any = None) -> Firewall:
    """A firewall that saw the card answer 9000 to SELECT AP (and SELECT EF `ef`)."""
    fw = Firewall(last_try)
    if applet:
        fw.observe(parse_command(bytes.fromhex(SEL_AP)), OK)
    if ef is not None:
        fw.observe(parse_command(bytes.fromhex("00A4020C02" + ef)), OK)
    return fw


# (state: None = power-up, "AP" = JPKI-AP, or an EF id; APDU hex; reason fragment or None)
ALLOWED = [
    (None, SEL_AP),
    ("AP", SEL_AP),
    ("000A", SEL_AP),
    ("AP", "00A4020C02000A"),
    ("AP", "00A4020C02000B"),
    ("AP", "00A4020C020017"),
    ("AP", "00A4020C020018"),
    ("0018", "00A4020C02000A"),
    ("000A", "00B0000000"),  # Le 00 = 256
    ("000A", "00B0000004"),
    ("000B", "00B0070080"),
    ("000A", "00B07FFF01"),  # 15-bit offset
    ("000A", "00B0000000FFFF"),  # extended Le
    ("000A", "00B00000000000"),  # extended Le 0000 = 65536
    ("0018", "00200080"),
    ("0017", SIGN),
]

REFUSED = [
    # classes: logical channels, secure messaging, chaining, proprietary
    (None, "01A4040C0A" + AID, "CLA 01"),
    (None, "03A4040C0A" + AID, "CLA 03"),
    (None, "40A4040C0A" + AID, "CLA 40"),
    (None, "0CA4040C0A" + AID, "CLA 0C"),
    (None, "08A4040C0A" + AID, "CLA 08"),
    (None, "10A4040C0A" + AID, "CLA 10"),
    (None, "84A4040C0A" + AID, "CLA 84"),
    ("0017", "0C2A008033" + DIGEST_INFO + "00", "CLA 0C"),
    (None, "80A4040C0A" + AID, "CLA 80 only for 2A"),
    ("000A", "80B0000000", "CLA 80 only for 2A"),
    ("0017", "002A008033" + DIGEST_INFO + "00", "INS 2A"),
    # SELECT by DF name: prefixes, other applets, FCI, extended, extra bytes
    (None, "00A4040C05D392F00026", "other than the exact JPKI AID"),
    (None, "00A4040C09D392F0002601000000", "other than the exact JPKI AID"),
    (None, "00A4040C05D392100031", "other than the exact JPKI AID"),
    (None, "00A4040C0A" + TEXT_AID, "other than the exact JPKI AID"),
    (None, "00A4040C0AD3921000310001010402", "other than the exact JPKI AID"),
    (None, "00A4040C07A0000001510000", "other than the exact JPKI AID"),
    (None, "00A4040C0B" + AID + "00", "other than the exact JPKI AID"),
    (None, "00A4040C0A" + AID + "00", "SELECT with Le"),  # case-4 trick
    (None, "00A4040C0A" + AID + "FF", "SELECT with Le"),
    (None, "00A40400" + "0A" + AID, "P1=04 P2=00"),  # FCI requested
    (None, "00A4040C00000A" + AID, "extended"),
    (None, "00A4040C00000A" + AID + "0000", "extended"),
    (None, "00A40400", "P1=04 P2=00"),
    (None, "00A4040C", "other than the exact JPKI AID"),
    # SELECT MF, by path, parent, child DF, by EF outside JPKI-AP
    ("000A", "00A40000", "P1=00 P2=00"),
    ("000A", "00A4000C023F00", "P1=00 P2=0C"),
    ("AP", "00A4080C04D392000A", "P1=08"),
    ("AP", "00A4090C02000A", "P1=09"),
    ("AP", "00A4030C", "P1=03"),
    ("AP", "00A4010C020001", "P1=01"),
    (None, "00A4020C02000A", "outside JPKI-AP"),
    # SELECT EF: anything but the four user-authentication EFs
    ("AP", "00A4020C020001", "EF 0001"),  # signing certificate
    ("AP", "00A4020C020002", "EF 0002"),
    ("AP", "00A4020C020006", "EF 0006"),  # token info
    ("AP", "00A4020C020008", "EF 0008"),
    ("AP", "00A4020C02001A", "EF 001A"),  # signing key
    ("AP", "00A4020C02001B", "EF 001B"),  # signing password
    ("AP", "00A4020C0100", "not 2 bytes"),
    ("AP", "00A4020C0300000A", "not 2 bytes"),
    ("AP", "00A4020C02000A00", "SELECT with Le"),
    ("AP", "00A4020C000002000A", "extended"),
    # READ BINARY: short-EF forms, wrong EF, data, no Le
    ("000A", "00B0810000", "short EF"),  # P1 = 80|sfi: EF 0001 of the current applet
    ("000A", "00B0860000", "short EF"),  # token info
    ("000A", "00B08A0000", "short EF"),
    ("000A", "00B0800000", "short EF"),
    ("AP", "00B0000000", "not selected"),
    (None, "00B0000000", "not selected"),
    ("0017", "00B0000000", "not selected"),
    ("0018", "00B0000000", "not selected"),
    ("000A", "00B00000", "without Le"),
    ("000A", "00B0000001FF", "with data"),
    ("000A", "00B1000000", "INS B1"),
    # VERIFY: data only through the sealed-PIN command; short-EF P2; state
    ("0018", "002000800431323334", "sealed-PIN"),
    ("0018", "00200080043132333400", "sealed-PIN"),
    ("0018", "0020008000000431323334", "sealed-PIN"),  # extended
    ("0018", "002000800100", "sealed-PIN"),
    ("0018", "00200080000000", "Le"),  # extended-length trick on a data-less VERIFY
    ("0018", "0020008000", "Le"),
    ("0018", "00200081", "P2=81"),
    ("0018", "00200098", "P2=98"),
    ("0018", "0020009B", "P2=9B"),  # short-EF: the signing password
    ("0018", "00200091", "P2=91"),  # short-EF: a text-helper PIN
    ("0018", "00200180", "P1=01"),
    ("0018", "00200000", "P2=00"),
    ("AP", "00200080", "not selected"),
    ("000A", "00200080", "not selected"),
    (None, "00200080", "not selected"),
    # COMPUTE DIGITAL SIGNATURE: key by short EF, P1, data, Le, state
    ("0017", "802A009A33" + DIGEST_INFO + "00", "P2=9A"),
    ("0017", "802A009733" + DIGEST_INFO + "00", "P2=97"),
    ("0017", "802A9E9A33" + DIGEST_INFO + "00", "P1=9E"),
    ("0017", "802A018033" + DIGEST_INFO + "00", "P1=01"),
    ("0017", "802A008020" + DIGEST_INFO[38:] + "00", "DigestInfo"),  # bare hash
    ("0017", "802A008033" + "00" * 51 + "00", "DigestInfo"),
    ("0017", "802A008034" + DIGEST_INFO + "0000", "DigestInfo"),
    ("0017", "802A008033" + DIGEST_INFO, "Le 00"),
    ("0017", "802A008033" + DIGEST_INFO + "FF", "Le 00"),
    ("0017", "802A0080000033" + DIGEST_INFO + "0000", "extended"),
    ("0018", SIGN, "not selected"),
    ("000A", SIGN, "not selected"),
    ("AP", SIGN, "not selected"),
    # Everything the host never needs
    (None, "00CA9F7F00", "INS CA"),
    (None, "80CA9F7F00", "CLA 80 only for 2A"),
    ("AP", "00CA006600", "INS CA"),
    ("AP", "0088000000", "INS 88"),
    ("AP", "0084000008", "INS 84"),
    ("0018", "002401800431323334", "INS 24"),
    ("AP", "80A20000", "CLA 80 only for 2A"),
    ("AP", "80AE000000", "CLA 80 only for 2A"),
    ("000A", "00D6000001FF", "INS D6"),
    ("000A", "00D0000001FF", "INS D0"),
    ("000A", "00DA000001FF", "INS DA"),
    ("000A", "00E2000001FF", "INS E2"),
    ("000A", "00E40000", "INS E4"),
    ("000A", "000E0000", "INS 0E"),
    ("000A", "0044000000", "INS 44"),
    ("000A", "0070000001", "INS 70"),  # MANAGE CHANNEL
    ("000A", "00C0000000", "INS C0"),  # GET RESPONSE
    ("0018", "002C000000", "INS 2C"),
    ("AP", "0050000008" + "00" * 8, "INS 50"),
    # Malformed bytes
    (None, "", "malformed"),
    (None, "00A4", "malformed"),
    (None, "00A404", "malformed"),
    (None, "00A4040C0AD392", "malformed"),
    (None, "00A4040C00", "SELECT with Le"),  # parses as case 2 (Le = 256)
    ("000A", "00B0000000000000", "malformed"),
    (None, "00A4040C0000", "malformed"),
    (None, "00" * 70000, "malformed"),
]


def build(state: str | None) -> Firewall:
    if state is None:
        return Firewall()
    if state == "AP":
        return fw_in()
    return fw_in(state)


@pytest.mark.parametrize(("state", "apdu"), ALLOWED)
def test_allowed(state: str | None, apdu: str) -> None:
    decision = build(state).check(bytes.fromhex(apdu))
    assert decision.allowed, decision.reason
    assert build(state).check(parse_command(bytes.fromhex(apdu))).allowed


@pytest.mark.parametrize(("state", "apdu", "reason"), REFUSED)
def test_refused_with_reason(state: str | None, apdu: str, reason: str) -> None:
    decision = build(state).check(bytes.fromhex(apdu))
    assert not decision.allowed
    assert reason in decision.reason


def test_check_does_not_change_state() -> None:
    fw = Firewall()
    fw.check(bytes.fromhex(SEL_AP))
    assert fw.applet is Applet.UNKNOWN
    assert not fw.check(bytes.fromhex("00A4020C02000A")).allowed


@pytest.mark.parametrize("sw", [0x6A82, 0x6982, 0x6F00, 0x6881])
def test_failed_select_ef_forgets_the_ef(sw: int) -> None:
    fw = fw_in("000A")
    fw.observe(parse_command(bytes.fromhex("00A4020C02000B")), Response(b"", sw))
    assert fw.ef is None
    assert fw.applet is Applet.JPKI
    assert not fw.check(bytes.fromhex("00B0000000")).allowed


def test_failed_select_ap_forgets_the_applet() -> None:
    fw = fw_in("000A")
    fw.observe(parse_command(bytes.fromhex(SEL_AP)), Response(b"", 0x6A82))
    assert (fw.applet, fw.ef) == (Applet.UNKNOWN, None)
    assert not fw.check(bytes.fromhex("00A4020C02000A")).allowed


@pytest.mark.parametrize(
    "apdu",
    [
        "00A40000",  # select MF: "changes nothing" on real cards, we do not rely on it
        "00A4040C0A" + TEXT_AID,
        "00A4040C05D392F00026",
        "80A4020C02000A",
        "00A4020C020001",
        "00A4020C02000A00",
    ],
)
def test_any_other_select_observed_forgets_everything(apdu: str) -> None:
    fw = fw_in("000A")
    fw.observe(parse_command(bytes.fromhex(apdu)), OK)
    assert fw.ef is None
    assert not fw.check(bytes.fromhex("00B0000000")).allowed


def test_reset_forgets_everything() -> None:
    fw = fw_in("000A")
    fw.reset()
    assert (fw.applet, fw.ef) == (Applet.UNKNOWN, None)
    assert not fw.check(bytes.fromhex("00B0000000")).allowed


def test_other_commands_do_not_change_state() -> None:
    fw = fw_in("000A")
    fw.observe(parse_command(bytes.fromhex("00B0000000")), Response(b"\x30" * 256, SW.OK))
    fw.observe(parse_command(bytes.fromhex("00B0000000")), Response(b"", 0x6B00))
    assert fw.ef == 0x000A


def test_refusals_log_reason_and_header_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fw = fw_in("0018")
    apdu = "002000800439383736"
    assert not fw.check(bytes.fromhex(apdu)).allowed
    assert "00 20 00 80" in caplog.text
    assert "sealed-PIN" in caplog.text
    text = caplog.text.upper().replace(" ", "")
    assert "39383736" not in text
    assert "9876" not in "".join(r.getMessage() for r in caplog.records)


# -- the PIN guard and the sealed VERIFY ----------------------------------------------

TRIES = parse_command(bytes.fromhex("00200080"))


def after_tries(sw: int, last_try: Any = None) -> Firewall:
    fw = fw_in("0018", last_try=last_try)
    fw.observe(TRIES, Response(b"", sw))
    return fw


class Memory:
    """A stand-in for the re-tap records (bridge.lasttry): armed or not, and what it heard."""

    def __init__(self, armed: bool) -> None:
        self.is_armed = armed
        self.heard: list[int | None] = []
        self.spent = 0

    def seen(self, tries: int | None) -> None:
        self.heard.append(tries)

    def armed(self) -> bool:
        return self.is_armed

    def spend(self) -> bool:
        if not self.is_armed:
            return False
        self.is_armed, self.spent = False, self.spent + 1
        return True


@pytest.mark.parametrize(("sw", "tries"), [(0x63C3, 3), (0x63C2, 2), (0x9000, None)])
def test_sealed_verify_builds_exactly_the_verify(sw: int, tries: int | None) -> None:
    fw = after_tries(sw)
    command = fw.sealed_verify("0427", tries, confirmed=False)
    assert command.encode() == bytes.fromhex("002000800430343237")
    assert "3034" not in repr(command)


@pytest.mark.parametrize("sw", [0x6984, 0x63C0])
def test_locked_card_is_refused_even_when_confirmed(sw: int) -> None:
    fw = after_tries(sw)
    with pytest.raises(PINGuardRefused) as err:
        fw.sealed_verify("1234", 0, confirmed=True)
    assert err.value.code is Code.PIN_LOCKED


@pytest.mark.parametrize("confirmed", [False, True])
@pytest.mark.parametrize("last_try", [None, Memory(armed=False)], ids=["no-memory", "not-armed"])
def test_last_try_needs_a_retap_whatever_the_page_says(last_try: Any, confirmed: bool) -> None:
    with pytest.raises(PINGuardRefused) as err:
        after_tries(0x63C1, last_try).sealed_verify("1234", 1, confirmed=confirmed)
    assert (err.value.code, err.value.tries_left) == (Code.PIN_RETAP, 1)


def test_last_try_after_a_retap_needs_confirmation_then_goes_once() -> None:
    memory = Memory(armed=True)
    with pytest.raises(PINGuardRefused) as err:
        after_tries(0x63C1, memory).sealed_verify("1234", 1, confirmed=False)
    assert (err.value.code, err.value.tries_left) == (Code.PIN_LAST_TRY, 1)
    assert memory.spent == 0  # a refusal uses nothing up
    fw = after_tries(0x63C1, memory)
    assert fw.sealed_verify("1234", 1, confirmed=True).data == b"1234"
    assert memory.spent == 1  # used up before the VERIFY leaves
    fw.observe(TRIES, Response(b"", 0x63C1))
    with pytest.raises(PINGuardRefused) as again:
        fw.sealed_verify("1234", 1, confirmed=True)
    assert again.value.code is Code.PIN_RETAP


def test_the_firewall_tells_every_pin_count_the_card_answers() -> None:
    memory = Memory(armed=False)
    fw = after_tries(0x63C3, memory)
    assert fw.tries_seen is not None and fw.tries_seen.tries == 3
    verify = fw.sealed_verify("1234", 3, confirmed=False)
    fw.observe(verify, Response(b"", 0x63C2))
    fw.observe(TRIES, Response(b"", 0x63C2))
    verify = fw.sealed_verify("1234", 2, confirmed=False)
    fw.observe(verify, Response(b"", 0x9000))  # verified: the counter is full again
    fw.observe(TRIES, Response(b"", 0x6984))
    assert memory.heard == [3, 2, 2, None, 0]
    fw.reset()  # a reset of the card is not a re-tap: the memory keeps what it heard
    assert memory.heard == [3, 2, 2, None, 0] and fw.tries_seen is not None


@pytest.mark.parametrize(
    ("state", "apdu"),
    [("AP", "00200080"), ("000A", "00200080"), ("0018", "00200081"), ("0018", "0020008000")],
)
def test_pin_counts_outside_ef_0018_are_not_believed(state: str, apdu: str) -> None:
    memory = Memory(armed=False)
    fw = build(state)
    fw.last_try = memory
    fw.observe(parse_command(bytes.fromhex(apdu)), Response(b"", 0x63C1))
    assert memory.heard == [] and fw.tries_seen is None


def test_sealed_verify_needs_a_fresh_tries_read_each_time() -> None:
    fw = fw_in("0018")
    with pytest.raises(CommandRefused, match="fresh"):
        fw.sealed_verify("1234", 3, confirmed=False)
    fw.observe(TRIES, Response(b"", 0x63C3))
    fw.sealed_verify("1234", 3, confirmed=False)
    with pytest.raises(CommandRefused, match="fresh"):  # never retry
        fw.sealed_verify("1234", 3, confirmed=False)


def test_sealed_verify_tries_must_match_what_the_card_said() -> None:
    with pytest.raises(CommandRefused, match="match"):
        after_tries(0x63C1).sealed_verify("1234", 3, confirmed=False)


def test_a_select_between_tries_and_verify_voids_the_tries() -> None:
    fw = after_tries(0x63C3)
    fw.observe(parse_command(bytes.fromhex("00A4020C020018")), OK)
    with pytest.raises(CommandRefused):
        fw.sealed_verify("1234", 3, confirmed=False)


@pytest.mark.parametrize("state", ["AP", "000A", "0017", None])
def test_sealed_verify_only_on_ef_0018(state: str | None) -> None:
    fw = build(state)
    fw.observe(TRIES, Response(b"", 0x63C3))
    with pytest.raises(CommandRefused):
        fw.sealed_verify("1234", 3, confirmed=False)


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "１２３４", "", "12 4", "٣٣٣٣"])
def test_sealed_verify_pin_format(pin: str) -> None:
    with pytest.raises(PINFormatError):
        after_tries(0x63C3).sealed_verify(pin, 3, confirmed=False)


def test_tries_from_sw() -> None:
    assert tries_from_sw(0x63C2) == 2
    assert tries_from_sw(0x9000) is None
    assert tries_from_sw(0x6984) == 0
    with pytest.raises(ValueError):
        tries_from_sw(0x6A82)


# -- filter_batch and run_sealed_verify over a scripted card ---------------------------


class ScriptedCard:
    """Answers 9000 (or a scripted SW per INS) and records what it was sent."""

    def __init__(self, answers: dict[int, int] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[bytes] = []

    def __call__(self, command: Command) -> Response:
        self.sent.append(command.encode())
        return Response(b"", self.answers.get(command.ins, SW.OK))


def steps(*apdus: str) -> list[Step]:
    return [Step(parse_command(bytes.fromhex(a))) for a in apdus]


def test_filter_batch_sends_an_allowed_batch() -> None:
    card = ScriptedCard()
    responses = filter_batch(Firewall(), steps(SEL_AP, "00A4020C02000A", "00B0000000"), card)
    assert [r.sw for r in responses] == [SW.OK] * 3
    assert len(card.sent) == 3


def test_filter_batch_refuses_the_whole_batch_before_sending() -> None:
    card = ScriptedCard()
    fw = Firewall()
    batch = steps(SEL_AP, "00A4020C02000A", "00B0000000", "00A4020C020001", "00B0000000")
    with pytest.raises(CommandRefused, match="EF 0001") as err:
        filter_batch(fw, batch, card)
    assert err.value.code is Code.REFUSED
    assert card.sent == []


def test_filter_batch_follows_what_the_card_answered() -> None:
    # SELECT EF fails on the card: the READ after it is refused and never sent.
    card = ScriptedCard({0xA4: SW.OK})
    fw = Firewall()
    filter_batch(fw, steps(SEL_AP), card)
    card.answers[0xA4] = 0x6A82
    batch = [Step(parse_command(bytes.fromhex("00A4020C02000A")), frozenset({SW.OK, 0x6A82}))]
    batch += steps("00B0000000")
    with pytest.raises(CommandRefused, match="not selected"):
        filter_batch(fw, batch, card)
    assert card.sent[-1] == bytes.fromhex("00A4020C02000A")


def test_filter_batch_stops_per_proceed_on() -> None:
    card = ScriptedCard({0xB0: 0x6B00})
    responses = filter_batch(
        Firewall(), steps(SEL_AP, "00A4020C02000A", "00B0000000", "00B0010000"), card
    )
    assert [r.sw for r in responses] == [SW.OK, SW.OK, 0x6B00]
    assert len(card.sent) == 3


def test_run_sealed_verify_sends_tries_then_one_verify() -> None:
    card = ScriptedCard({0x20: 0x63C3})
    fw = Firewall()
    tries, answer = run_sealed_verify(fw, "2580", confirmed=False, send=card)
    assert tries == 3
    assert answer.sw == 0x63C3
    assert card.sent == [
        bytes.fromhex(SEL_AP),
        bytes.fromhex("00A4020C020018"),
        bytes.fromhex("00200080"),
        bytes.fromhex("002000800432353830"),
    ]


def test_run_sealed_verify_guard_sends_no_verify() -> None:
    card = ScriptedCard({0x20: 0x63C1})
    with pytest.raises(PINGuardRefused):
        run_sealed_verify(Firewall(), "2580", confirmed=False, send=card)
    assert all(len(raw) == 4 or raw[1] == 0xA4 for raw in card.sent)


def test_run_sealed_verify_not_a_my_number_card() -> None:
    card = ScriptedCard({0xA4: 0x6A82})
    with pytest.raises(NotMyNumberCard) as err:
        run_sealed_verify(Firewall(), "2580", confirmed=False, send=card)
    assert (err.value.code, err.value.sw) == (Code.NOT_MY_NUMBER_CARD, 0x6A82)
    assert len(card.sent) == 1


def test_run_sealed_verify_tries_read_fails() -> None:
    card = ScriptedCard({0x20: 0x6982})
    with pytest.raises(CardStatusError) as err:
        run_sealed_verify(Firewall(), "2580", confirmed=False, send=card)
    assert err.value.sw == 0x6982
    assert len(card.sent) == 3
