"""ISO 7816-4 command and response APDUs: encode, parse, status words.

Standard library only (see docs/design.md, "Pure card knowledge"): imported by the
bridge, the virtual card and the platform alike.

Parsing is strict: a byte string is either exactly one well-formed case 1/2/3/4 APDU
(short or extended, ISO 7816-3 12.1.3) or a `MalformedAPDU`. The firewall and the
virtual card both build on this one parser, so what one sees the other sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MAX_SHORT_LC = 255
MAX_SHORT_LE = 256
MAX_EXTENDED_LC = 65535
MAX_EXTENDED_LE = 65536
# The longest command we ever have to accept: 4-byte header, 3-byte extended Lc, 65535
# bytes of data, 2-byte extended Le. Anything longer is not an APDU.
MAX_COMMAND_BYTES = 4 + 3 + MAX_EXTENDED_LC + 2


class MalformedAPDU(ValueError):
    """The bytes are not one well-formed command APDU."""


class SW(IntEnum):
    """Status words the JPKI applet and our virtual card answer with."""

    OK = 0x9000
    WRONG_LENGTH = 0x6700
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1P2 = 0x6A86
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


def is_wrong_pin(sw: int) -> bool:
    """True for 63Cx: verification failed (or, without data, tries left = x)."""
    return sw & 0xFFF0 == 0x63C0


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU. `le` is None when no response data is expected (cases 1 and 3).

    `extended` records whether the bytes used extended length fields; `encode()`
    chooses extended form by itself when a length does not fit the short form.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise MalformedAPDU(f"{name} out of range: {value}")
        if len(self.data) > MAX_EXTENDED_LC:
            raise MalformedAPDU(f"data too long: {len(self.data)} bytes")
        if self.le is not None and not 1 <= self.le <= MAX_EXTENDED_LE:
            raise MalformedAPDU(f"Le out of range: {self.le}")

    @property
    def header(self) -> bytes:
        """The four header bytes CLA INS P1 P2."""
        return bytes((self.cla, self.ins, self.p1, self.p2))

    def encode(self) -> bytes:
        """The command as bytes on the wire (short form where it fits)."""
        ext = (
            self.extended
            or len(self.data) > MAX_SHORT_LC
            or (self.le is not None and self.le > MAX_SHORT_LE)
        )
        out = bytearray(self.header)
        if not ext:
            if self.data:
                out.append(len(self.data))
                out += self.data
            if self.le is not None:
                out.append(self.le & 0xFF)  # 256 encodes as 00
            return bytes(out)
        if self.data:
            out += b"\x00" + len(self.data).to_bytes(2, "big")
            out += self.data
            if self.le is not None:
                out += (self.le & 0xFFFF).to_bytes(2, "big")  # 65536 encodes as 0000
        elif self.le is not None:
            out += b"\x00" + (self.le & 0xFFFF).to_bytes(2, "big")
        return bytes(out)

    def __repr__(self) -> str:
        # Never print command data: a VERIFY carries the PIN (see docs/design.md).
        return (
            f"Command({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
            f"lc={len(self.data)}, le={self.le})"
        )


def parse_command(raw: bytes) -> Command:
    """Parse one command APDU, short or extended; raise MalformedAPDU otherwise."""
    n = len(raw)
    if n < 4:
        raise MalformedAPDU(f"too short: {n} bytes")
    if n > MAX_COMMAND_BYTES:
        raise MalformedAPDU(f"too long: {n} bytes")
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]
    b = len(body)
    if b == 0:  # case 1
        return Command(cla, ins, p1, p2)
    if b == 1:  # case 2 short
        return Command(cla, ins, p1, p2, le=body[0] or 256)
    if body[0] != 0:  # short Lc: case 3 or 4 short
        lc = body[0]
        if b == 1 + lc:
            return Command(cla, ins, p1, p2, data=bytes(body[1:]))
        if b == 2 + lc:
            return Command(cla, ins, p1, p2, data=bytes(body[1 : 1 + lc]), le=body[-1] or 256)
        raise MalformedAPDU(f"short Lc {lc} does not match body of {b} bytes")
    # body[0] == 0 and b >= 2: extended forms
    if b == 3:  # case 2 extended
        le = int.from_bytes(body[1:3], "big") or 65536
        return Command(cla, ins, p1, p2, le=le, extended=True)
    if b < 3:
        raise MalformedAPDU(f"bad body length {b}")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise MalformedAPDU("extended Lc of zero")
    if b == 3 + lc:
        return Command(cla, ins, p1, p2, data=bytes(body[3:]), extended=True)
    if b == 5 + lc:
        le = int.from_bytes(body[-2:], "big") or 65536
        return Command(cla, ins, p1, p2, data=bytes(body[3 : 3 + lc]), le=le, extended=True)
    raise MalformedAPDU(f"extended Lc {lc} does not match body of {b} bytes")


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU: data and the two status bytes."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        """True when the status word is 9000."""
        return self.sw == SW.OK

    def encode(self) -> bytes:
        """Data followed by SW1 SW2."""
        return self.data + self.sw.to_bytes(2, "big")

    def __repr__(self) -> str:
        return f"Response({len(self.data)} bytes, sw={self.sw:04X})"


def parse_response(raw: bytes) -> Response:
    """Split a response into data and status word."""
    if len(raw) < 2:
        raise MalformedAPDU(f"response too short: {len(raw)} bytes")
    return Response(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))
