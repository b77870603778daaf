"""pysip2's codec in the library system's character set, checksums on or off.

UTF-8 and cp850 go straight through pysip2. Shift_JIS needs one more step each way: the
second byte of a double-byte character may be 0x7C, the byte of "|" (e.g. "ポ" is
0x83 0x7C), and a SIP2 parser splits fields on that byte:

- decoding, a reply is checked (the checksum is over the bytes as sent), then read as
  Shift_JIS text and handed to pysip2 as UTF-8, in which "|" only ever means "|";
- encoding, a frame must read back, byte by byte as the library system would split it,
  as the same message: a value that would not (a patron password with "ポ") is refused
  with `sip2_charset` instead of reaching the system cut in two.

"shift_jis" is Windows-31J (cp932), what Japanese library systems mean by it: it has
the NEC and IBM extensions (①, ㈱, 髙) that plain Shift_JIS lacks.
"""

from __future__ import annotations

from pysip2 import (
    DecodedMessage,
    SIP2ChecksumError,
    SIP2CodecError,
    SIPMessage,
    calculate_checksum,
    decode_message,
    encode_message,
    verify_checksum,
)

from bridge.sip2_wire import Sip2Code

from . import Sip2Error

ENCODINGS = {"utf-8": "utf-8", "shift_jis": "cp932", "cp850": "cp850"}
# Character sets in which a multi-byte character may contain the byte of "|".
_SPLIT_PRONE = frozenset({"cp932"})
_HEX = frozenset(b"0123456789ABCDEFabcdef")


class Sip2Codec:
    """Encode requests and decode replies for one library system."""

    def __init__(self, charset: str = "utf-8", *, checksums: bool = False) -> None:
        self.charset = charset
        self.encoding = ENCODINGS[charset]
        self.checksums = checksums

    def encode(self, message: SIPMessage, sequence: int = 0) -> bytes:
        """The full frame (with CR; with AY/AZ when checksums are on).

        Sip2Error `sip2_charset` when a value does not fit the character set (or would
        not read back as itself), `sip2_refused` when the codec refuses a value.
        """
        try:
            frame = encode_message(
                message,
                sequence_number=sequence if self.checksums else None,
                checksum=self.checksums,
                encoding=self.encoding,
            )
        except UnicodeEncodeError:
            raise Sip2Error(Sip2Code.CHARSET, f"a value is not in {self.charset}") from None
        except SIP2CodecError as exc:
            raise Sip2Error(Sip2Code.REFUSED, f"the codec refused it: {exc}") from None
        if self.encoding in _SPLIT_PRONE:
            try:
                back = decode_message(frame, encoding=self.encoding).message
            except (SIP2CodecError, UnicodeDecodeError):
                back = None
            if back != message:
                raise Sip2Error(
                    Sip2Code.CHARSET, f"a value would not survive {self.charset}'s '|' bytes"
                )
        return frame

    def decode(self, frame: bytes) -> DecodedMessage[SIPMessage]:
        """A reply frame (with its CR) as a typed message.

        Raises SIP2ChecksumError (a checksum that does not verify), SIP2CodecError or
        UnicodeDecodeError (a malformed frame).
        """
        if self.encoding not in _SPLIT_PRONE:
            return decode_message(frame, encoding=self.encoding)
        if not frame.endswith(b"\r") or b"\r" in frame[:-1]:
            raise SIP2CodecError("not one CR-terminated frame")
        body = frame[:-1]
        # pysip2's rule for a trailer: "AZ" and four hex digits at the very end.
        trailer = len(body) >= 6 and body[-6:-4] == b"AZ" and all(b in _HEX for b in body[-4:])
        if trailer and not verify_checksum(body):
            raise SIP2ChecksumError("checksum mismatch")
        text = frame.decode(self.encoding)
        utf8 = text.encode("utf-8")
        if trailer:
            # The checksum was verified above on the bytes as sent; this one only lets
            # pysip2 take the UTF-8 form (it verifies every trailer it sees).
            prefix = utf8[:-5]
            utf8 = prefix + calculate_checksum(prefix).encode("ascii") + b"\r"
        decoded = decode_message(utf8, encoding="utf-8")
        return DecodedMessage(
            decoded.message,
            decoded.sequence_number,
            body[-4:].decode("ascii") if trailer else None,
        )
