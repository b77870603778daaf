"""Property tests of the APDU codec (bridge/apdu.py): round trips and total parsing."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.apdu import (
    MAX_COMMAND_BYTES,
    SW,
    Command,
    MalformedAPDU,
    Response,
    is_wrong_pin,
    parse_command,
    parse_response,
)

byte = st.integers(0, 255)
JPKI_AID = bytes.fromhex("D392F000260100000001")


@st.composite
def commands(draw: st.DrawFn) -> Command:
    """Any valid Command: cases 1-4, short or extended, up to 300 bytes of data."""
    data = draw(st.binary(max_size=300))
    le = draw(st.one_of(st.none(), st.integers(1, 256), st.integers(1, 65536)))
    extended = draw(st.booleans())
    return Command(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


def normalized(command: Command) -> Command:
    """What parsing the encoding must give back: `extended` as the bytes show it."""
    if not command.data and command.le is None:
        extended = False  # case 1 has no length field at all
    else:
        extended = (
            command.extended
            or len(command.data) > 255
            or (command.le is not None and command.le > 256)
        )
    return Command(
        command.cla, command.ins, command.p1, command.p2, command.data, command.le, extended
    )


@given(commands())
def test_encode_then_parse_round_trips(command: Command) -> None:
    assert parse_command(command.encode()) == normalized(command)


@st.composite
def apdu_like(draw: st.DrawFn) -> bytes:
    """Byte strings shaped like APDUs, right and wrong: header + length fields + data."""
    header = draw(st.binary(min_size=4, max_size=4))
    data = draw(st.binary(max_size=270))
    form = draw(st.sampled_from(["short", "ext", "ext-le", "raw"]))
    if form == "short":
        body = bytes([draw(byte)]) + data + draw(st.binary(max_size=1))
    elif form == "ext":
        body = b"\x00" + draw(st.binary(min_size=2, max_size=2)) + data
    elif form == "ext-le":
        body = b"\x00" + len(data).to_bytes(2, "big") + data + draw(st.binary(max_size=3))
    else:
        body = data
    return header + body


@given(st.one_of(st.binary(max_size=300), apdu_like()))
@example(b"")
@example(b"\x00\xa4\x04")
@example(b"\x00\xb0\x00\x00\x00")  # extended with a 1-byte tail: malformed
@example(b"\x00\xb0\x00\x00\x00\x00")
@example(b"\x00\xb0\x00\x00\x00\x00\x00")  # extended Le 0000 = 65536
@example(b"\x00\x20\x00\x80\x00\x00\x00")
def test_any_bytes_parse_or_raise_malformed(raw: bytes) -> None:
    """Every byte string is one well-formed APDU (and re-encodes to itself) or malformed."""
    try:
        command = parse_command(raw)
    except MalformedAPDU:
        return
    assert isinstance(command, Command)
    assert command.encode() == raw


def test_too_long_is_malformed() -> None:
    with pytest.raises(MalformedAPDU, match="too long"):
        parse_command(b"\x00" * (MAX_COMMAND_BYTES + 1))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00A4040C0AD392F000260100000001", Command(0, 0xA4, 4, 0x0C, JPKI_AID)),
        ("00B0000000", Command(0, 0xB0, 0, 0, le=256)),
        ("00B0000004", Command(0, 0xB0, 0, 0, le=4)),
        ("00B00000000800", Command(0, 0xB0, 0, 0, le=2048, extended=True)),
        ("00B00000000000", Command(0, 0xB0, 0, 0, le=65536, extended=True)),
        ("00200080", Command(0, 0x20, 0, 0x80)),
        ("002000800431323334", Command(0, 0x20, 0, 0x80, b"1234")),
        ("802A00800301020300", Command(0x80, 0x2A, 0, 0x80, b"\x01\x02\x03", 256)),
        ("802A00800000030102030100", Command(0x80, 0x2A, 0, 0x80, b"\x01\x02\x03", 256, True)),
    ],
)  # fmt: skip
def test_known_commands(raw: str, expected: Command) -> None:
    assert parse_command(bytes.fromhex(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "00", "00A404", "00A4040C05D3", "00B000000001", "0020008000000000", "00B00000000002AA"],
)
def test_malformed_examples(raw: str) -> None:
    with pytest.raises(MalformedAPDU):
        parse_command(bytes.fromhex(raw))


@pytest.mark.parametrize(
    "kwargs",
    [{"cla": 256}, {"ins": -1}, {"data": b"\x00" * 65536}, {"le": 0}, {"le": 65537}],
)
def test_command_rejects_impossible_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0} | kwargs
    with pytest.raises(MalformedAPDU):
        Command(**fields)  # type: ignore[arg-type]


def test_command_repr_hides_data() -> None:
    assert "1234" not in repr(Command(0, 0x20, 0, 0x80, b"1234"))
    assert "31323334" not in repr(Command(0, 0x20, 0, 0x80, b"1234")).replace(" ", "")


@given(st.binary(min_size=2, max_size=300))
def test_response_round_trip(raw: bytes) -> None:
    response = parse_response(raw)
    assert response.encode() == raw
    assert response.ok == (raw[-2:] == b"\x90\x00")


def test_short_response_is_malformed() -> None:
    with pytest.raises(MalformedAPDU):
        parse_response(b"\x90")


@pytest.mark.parametrize(
    ("sw", "expected"),
    [(0x63C0, True), (0x63C3, True), (0x63CF, True), (0x6300, False), (0x6984, False),
     (SW.OK, False)],
)  # fmt: skip
def test_is_wrong_pin(sw: int, expected: bool) -> None:
    assert is_wrong_pin(sw) is expected


def test_response_repr_hides_data() -> None:
    assert "1234" not in repr(Response(b"1234", 0x9000))
