"""`VirtualCard`: a My Number Card (RSA-2048 generation) as an APDU processor.

Raw command APDU in, raw response (data + SW1 SW2) out, answering every command the
way shared/docs/jpki-card.md says the real card does, quirks included: SELECT by a
prefix of an AID, short-EF addressing that bypasses SELECT, select-MF that answers
9000 and changes nothing, 6881 for logical channels, 6882 for secure messaging,
63Cx / 63C0 / 6984 PIN counters that persist across sessions (in the card file).

Where the document is silent the card answers plausibly and never changes state a
real card would not. These choices are ours, not from a recorded card:
- A VERIFY whose data is not the PIN spends a try, whatever its length: the card
  compares reference data, it does not check formats (the host must).
- A PIN-verified state belongs to the selected applet: power-on/reset and selecting a
  *different* applet clear it; re-selecting the same applet keeps it (ISO 7816-4:
  security status is lost when leaving the DF). A wrong VERIFY clears that PIN's state.
- READ BINARY that starts inside the EF but asks for more than is left returns the
  rest with 9000 (readers loop on the length they got); starting at or past the end
  answers 6B00.
- No current EF: 6986. READ BINARY of a PIN or key EF: 6981. VERIFY / signature
  naming an EF of the wrong kind: 6A88. GET DATA outside the ISD, and any INS an
  applet does not implement: 6D00. Writes, INTERNAL AUTHENTICATE, 80 A2, 80 AE and the
  ISD's management commands: 6982 (they need the municipal office's keys).
- GET CHALLENGE (00 84 00 00 08) returns 8 random bytes: harmless, keeps no state.
- CHANGE REFERENCE DATA 00 24 01 80|sfi <new PIN> after a VERIFY changes that PIN,
  as the JPKI client software does on a real card.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..apdu import SW, Command, MalformedAPDU, parse_command
from .applets import (
    AUTH_PIN,
    EF,
    NEVER,
    SIGN_PASSWORD,
    TEXT_PIN,
    Applet,
    BinaryEF,
    KeyEF,
    PinEF,
    build_applets,
    find_by_prefix,
)
from .cardfile import CardData, CardFile, PinState

log = logging.getLogger(__name__)

# What a contact reader sees (the card itself is ISO 14443 Type B): T=1, no historical
# bytes. OpenSC's JPKI driver matches on exactly this ATR.
ATR = bytes.fromhex("3BE000FF8131FE4514")

SW_INCOMPATIBLE_FILE = 0x6981  # command incompatible with the file structure
SW_REFERENCE_NOT_FOUND = 0x6A88  # referenced data (PIN, key, data object) not found
MF_ID = b"\x3f\x00"

# INS codes that write or administer files or PINs: refused with 6982 (not documented).
WRITE_INS = frozenset(
    {0x04, 0x0E, 0x2C, 0x44, 0x46, 0x47, 0xD0, 0xD6, 0xDA, 0xDB, 0xDC, 0xE0, 0xE2, 0xE4, 0xE6}
)
# GlobalPlatform card management (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, PUT KEY,
# DELETE, SET STATUS, INSTALL, LOAD, GET STATUS ...): need a secure channel.
ISD_ADMIN_INS = frozenset({0x50, 0x82, 0xD8, 0xE4, 0xE6, 0xE8, 0xF0, 0xF2})

Answer = tuple[bytes, int]
_E = TypeVar("_E", PinEF, KeyEF)


def check_cla(cla: int) -> int | None:
    """None when the card processes commands of this class; otherwise the SW it answers."""
    if cla == 0xFF:
        return SW.CLA_NOT_SUPPORTED  # invalid class (ISO 7816-4)
    # Logical channels: CLA b2b1 (first interindustry, and the proprietary classes
    # built the same way) or the further interindustry classes 40-7F.
    if 0x40 <= cla <= 0x7F or cla & 0x03:
        return SW.LOGICAL_CHANNEL_NOT_SUPPORTED
    if cla & 0x0C:  # b4b3: secure messaging (04 proprietary, 08 and 0C ISO)
        return SW.SECURE_MESSAGING_NOT_SUPPORTED
    if cla in (0x00, 0x80):
        return None
    return SW.CLA_NOT_SUPPORTED  # chaining (10), RFU and unknown proprietary classes


def pkcs1_type1_sign(key: KeyEF, message: bytes) -> bytes:
    """RSA private operation over EMSA-PKCS1-v1_5 type-1 padding of `message` (raw).

    The card pads the DigestInfo it is given, whatever it holds, and applies the key:
    m = 00 01 FF..FF 00 || message, s = m^d mod n (computed with the CRT).
    """
    numbers = key.key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    if len(message) > k - 11:
        raise ValueError("message too long for the key")
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(message)) + b"\x00" + message
    m = int.from_bytes(em, "big")
    s1 = pow(m, numbers.dmp1, numbers.p)
    s2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (s1 - s2)) % numbers.p
    return (s2 + h * numbers.q).to_bytes(k, "big")


@dataclass
class _Session:
    """What a power-on resets: the selected applet and EF, and the verified PINs."""

    applet: Applet
    ef: EF | None = None
    verified: set[str] = field(default_factory=set)


class VirtualCard:
    """A virtual My Number Card: `power_on()`, then `transmit(raw)` -> raw response."""

    def __init__(
        self,
        data: CardData,
        *,
        on_change: Callable[[], None] | None = None,
        apdu_delay_s: float | None = None,
        signature_time_s: float | None = None,
    ) -> None:
        self.data = data
        self.apdu_delay_s = data.apdu_delay_s if apdu_delay_s is None else apdu_delay_s
        self.signature_time_s = (
            data.signature_time_s if signature_time_s is None else signature_time_s
        )
        self.apdu_count = 0
        self._applets = build_applets(data)
        self._isd = next(a for a in self._applets if a.kind == "isd")
        self._pins: dict[str, PinState] = {
            AUTH_PIN: data.auth_pin,
            SIGN_PASSWORD: data.sign_password,
            TEXT_PIN: data.text_pin,
        }
        self._on_change = on_change
        self._lock = threading.Lock()
        self._session: _Session | None = None

    @classmethod
    def from_file(
        cls,
        path: Path | str,
        *,
        apdu_delay_s: float | None = None,
        signature_time_s: float | None = None,
    ) -> VirtualCard:
        """Load a card file; counter changes are written back to it atomically."""
        card_file = CardFile.load(path)
        return cls(
            card_file.data,
            on_change=card_file.save,
            apdu_delay_s=apdu_delay_s,
            signature_time_s=signature_time_s,
        )

    @property
    def atr(self) -> bytes:
        """The answer to reset."""
        return ATR

    @property
    def powered(self) -> bool:
        """True between power_on() and power_off()."""
        return self._session is not None

    @property
    def selected_applet(self) -> str | None:
        """Name of the selected applet (None when powered off)."""
        session = self._session
        return session.applet.name if session else None

    def power_on(self) -> bytes:
        """Power up (or reset): a new card session with the ISD selected; returns the ATR."""
        with self._lock:
            self._session = _Session(self._isd)
        return ATR

    def reset(self) -> bytes:
        """Warm reset: same as power_on()."""
        return self.power_on()

    def power_off(self) -> None:
        """Power down: the card session (selection, verified PINs) is gone."""
        with self._lock:
            self._session = None

    def transmit(self, raw: bytes) -> bytes:
        """Process one command APDU and return the response; never raises."""
        with self._lock:
            if self.apdu_delay_s > 0:
                time.sleep(self.apdu_delay_s)
            if self._session is None:
                # A reader powers the card before the first APDU; so do we, lazily.
                self._session = _Session(self._isd)
            self.apdu_count += 1
            try:
                data, sw = self._process(bytes(raw), self._session)
            except Exception:  # the card must answer something, whatever went wrong
                log.exception("virtual card: internal error")
                data, sw = b"", SW.NO_PRECISE_DIAGNOSIS
            return data + sw.to_bytes(2, "big")

    # -- dispatch ---------------------------------------------------------------------

    def _process(self, raw: bytes, session: _Session) -> Answer:
        try:
            cmd = parse_command(raw)
        except MalformedAPDU:
            return b"", SW.WRONG_LENGTH
        refused = check_cla(cmd.cla)
        if refused is not None:
            return b"", refused
        if cmd.cla == 0x00 and cmd.ins == 0xA4:
            return self._select(cmd, session)
        if session.applet.kind == "isd":
            return self._isd_command(cmd, session)
        return self._file_command(cmd, session)

    def _file_command(self, cmd: Command, session: _Session) -> Answer:
        if cmd.cla == 0x00:
            if cmd.ins == 0xB0:
                return self._read_binary(cmd, session)
            if cmd.ins == 0x20:
                return self._verify(cmd, session)
            if cmd.ins == 0x24:
                return self._change_reference_data(cmd, session)
            if cmd.ins == 0x84:
                return self._get_challenge(cmd)
            if cmd.ins == 0x88 or cmd.ins in WRITE_INS:
                return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        elif cmd.ins == 0x2A:  # CLA 80: COMPUTE DIGITAL SIGNATURE
            return self._sign(cmd, session)
        elif cmd.ins in (0xA2, 0xAE):
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        return b"", SW.INS_NOT_SUPPORTED

    def _isd_command(self, cmd: Command, session: _Session) -> Answer:
        if cmd.ins == 0xCA:  # GET DATA (CLA 00 or 80)
            if cmd.data or cmd.le is None:
                return b"", SW.WRONG_LENGTH
            obj = session.applet.data_objects.get(cmd.p1 << 8 | cmd.p2)
            if obj is None:
                return b"", SW_REFERENCE_NOT_FOUND
            return obj[: cmd.le], SW.OK
        if cmd.ins in ISD_ADMIN_INS:
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        return b"", SW.INS_NOT_SUPPORTED

    # -- SELECT -------------------------------------------------------------------------

    def _select(self, cmd: Command, session: _Session) -> Answer:
        if cmd.p2 not in (0x00, 0x0C):  # the card returns no FCI/FCP either way
            return b"", SW.INCORRECT_P1P2
        if cmd.p1 == 0x04:  # by DF name: any AID starting with the data (quirk)
            if not cmd.data:
                return b"", SW.WRONG_LENGTH
            applet = find_by_prefix(self._applets, cmd.data)
            if applet is None:
                return b"", SW.FILE_NOT_FOUND
            if applet is not session.applet:
                session.applet = applet
                session.verified.clear()
            session.ef = None
            return b"", SW.OK
        if cmd.p1 == 0x02:  # EF under the current DF
            if len(cmd.data) != 2:
                return b"", SW.WRONG_LENGTH
            ef = session.applet.efs.get(int.from_bytes(cmd.data, "big"))
            if ef is None:
                return b"", SW.FILE_NOT_FOUND
            session.ef = ef
            return b"", SW.OK
        if cmd.p1 == 0x00:  # the MF: answers 9000 and changes nothing (quirk)
            if cmd.data in (b"", MF_ID):
                return b"", SW.OK
            return b"", SW.FILE_NOT_FOUND
        return b"", SW.INCORRECT_P1P2

    # -- READ BINARY --------------------------------------------------------------------

    def _read_binary(self, cmd: Command, session: _Session) -> Answer:
        if cmd.data or cmd.le is None:
            return b"", SW.WRONG_LENGTH
        if cmd.p1 & 0x80:  # short EF: P1 = 100 sfi, offset = P2; bypasses SELECT (quirk)
            sfi = cmd.p1 & 0x1F
            if cmd.p1 & 0x60 or sfi == 0:
                return b"", SW.INCORRECT_P1P2
            ef = session.applet.efs.get(sfi)
            if ef is None:
                return b"", SW.FILE_NOT_FOUND
            session.ef = ef  # the short-EF-referenced file becomes current (ISO 7816-4)
            offset = cmd.p2
        else:
            if session.ef is None:
                return b"", SW.COMMAND_NOT_ALLOWED
            ef = session.ef
            offset = cmd.p1 << 8 | cmd.p2  # 15-bit offset
        if not isinstance(ef, BinaryEF):
            return b"", SW_INCOMPATIBLE_FILE
        if ef.read_pin == NEVER or (ef.read_pin and ef.read_pin not in session.verified):
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        if offset >= len(ef.content):
            return b"", SW.WRONG_P1P2  # 6B00: offset beyond the EF
        return ef.content[offset : offset + cmd.le], SW.OK

    # -- PINs -----------------------------------------------------------------------------

    def _referenced(self, p2: int, session: _Session, kind: type[_E]) -> _E | int:
        """The EF named by P2 = 80 (current EF) or 80|sfi (short EF, quirk), or an SW."""
        if not p2 & 0x80 or p2 & 0x60:
            return SW.INCORRECT_P1P2
        sfi = p2 & 0x1F
        if sfi == 0:
            if session.ef is None:
                return SW.COMMAND_NOT_ALLOWED
            ef = session.ef
        else:
            found = session.applet.efs.get(sfi)
            if found is None:
                return SW_REFERENCE_NOT_FOUND
            ef = found
        return ef if isinstance(ef, kind) else SW_REFERENCE_NOT_FOUND

    def _changed(self) -> None:
        """A counter or PIN changed: persist before answering, as the card's EEPROM does."""
        if self._on_change is not None:
            self._on_change()

    def _verify(self, cmd: Command, session: _Session) -> Answer:
        if cmd.p1 != 0x00:
            return b"", SW.INCORRECT_P1P2
        if cmd.le is not None:
            return b"", SW.WRONG_LENGTH
        ef = self._referenced(cmd.p2, session, PinEF)
        if isinstance(ef, int):
            return b"", ef
        pin = self._pins[ef.pin]
        if pin.tries_left == 0:
            return b"", SW.AUTH_METHOD_BLOCKED  # 6984, even for the right PIN
        if not cmd.data:  # tries left, spending none
            if ef.pin in session.verified:
                return b"", SW.OK
            return b"", 0x63C0 | pin.tries_left
        # Never log cmd.data: it is the PIN.
        if hmac.compare_digest(cmd.data, pin.value.encode("ascii")):
            session.verified.add(ef.pin)
            if pin.tries_left != pin.max_tries:
                pin.tries_left = pin.max_tries
                self._changed()
            return b"", SW.OK
        pin.tries_left -= 1
        session.verified.discard(ef.pin)
        self._changed()
        return b"", 0x63C0 | pin.tries_left  # 63C0 on the attempt that used the last try

    def _change_reference_data(self, cmd: Command, session: _Session) -> Answer:
        if cmd.p1 != 0x01:  # only "new reference data after VERIFY" is implemented
            return b"", SW.INCORRECT_P1P2
        if cmd.le is not None or not cmd.data:
            return b"", SW.WRONG_LENGTH
        ef = self._referenced(cmd.p2, session, PinEF)
        if isinstance(ef, int):
            return b"", ef
        pin = self._pins[ef.pin]
        if pin.tries_left == 0:
            return b"", SW.AUTH_METHOD_BLOCKED
        if ef.pin not in session.verified:
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        new = cmd.data.decode("ascii", errors="replace")
        if not ef.pattern.fullmatch(new):
            return b"", SW.WRONG_DATA
        pin.value = new
        pin.tries_left = pin.max_tries
        self._changed()
        return b"", SW.OK

    # -- other commands -------------------------------------------------------------------

    def _get_challenge(self, cmd: Command) -> Answer:
        if cmd.p1 or cmd.p2:
            return b"", SW.INCORRECT_P1P2
        if cmd.data or cmd.le != 8:
            return b"", SW.WRONG_LENGTH
        return secrets.token_bytes(8), SW.OK

    def _sign(self, cmd: Command, session: _Session) -> Answer:
        if cmd.p1 != 0x00:  # real cards know other P1 values; we implement 00 only
            return b"", SW.INCORRECT_P1P2
        if not cmd.data or cmd.le is None:
            return b"", SW.WRONG_LENGTH
        ef = self._referenced(cmd.p2, session, KeyEF)
        if isinstance(ef, int):
            return b"", ef
        if ef.pin not in session.verified:
            return b"", SW.SECURITY_STATUS_NOT_SATISFIED
        k = ef.key.key_size // 8
        if len(cmd.data) > k - 11 or cmd.le < k:
            return b"", SW.WRONG_LENGTH
        signature = pkcs1_type1_sign(ef, cmd.data)
        if self.signature_time_s > 0:
            time.sleep(self.signature_time_s)
        return signature, SW.OK
