"""The bridge's APDU firewall: only the JPKI user-authentication allowlist reaches a card.

Rule 1 of the architecture ("the My Number is untouchable") is enforced here, in the
bridge, whatever the platform sends. The firewall is a small state machine per card
session: it knows which applet and EF are selected from what the card answered to
SELECTs that it let through, and allows a command only when it is exactly one of the
user-authentication commands in the state that command needs (docs/bridge-protocol.md
has the table). Everything else is refused with a reason; refusals are logged with the
reason and the four header bytes only, never command data (a VERIFY carries the PIN).

VERIFY with data never passes `check`: it is built by `Firewall.sealed_verify` from the
PIN the bridge unsealed itself, behind the PIN guard (rule 5, never lock a card). With
one try left the guard also asks the firewall's `LastTry` (bridge.lasttry: was the card
taken off the reader and put back since one try left was first seen?), which the
firewall tells every PIN count the card answers.

Usage by the bridge: `Firewall(last_try)` per card session (the session hands it that
card session's view of the re-tap records), `reset()` on power-up or reset of the card,
`check(command)` before sending, `observe(command, response)` after, or simply
`filter_batch(fw, batch, send)`. Standard library only; no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .apdu import SW, Command, MalformedAPDU, Response, is_wrong_pin, parse_command
from .errors import (
    CardStatusError,
    Code,
    CommandRefused,
    NotMyNumberCard,
    PINFormatError,
    PINGuardRefused,
)
from .transport import Batch

log = logging.getLogger(__name__)

JPKI_AID = bytes.fromhex("D392F000260100000001")
EF_AUTH_CERT = 0x000A
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
ALLOWED_EFS = frozenset({EF_AUTH_CERT, EF_AUTH_CA_CERT, EF_AUTH_KEY, EF_AUTH_PIN})
READABLE_EFS = frozenset({EF_AUTH_CERT, EF_AUTH_CA_CERT})
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
DIGEST_INFO_LENGTH = len(SHA256_DIGEST_INFO_PREFIX) + 32  # Lc = 0x33
PIN_LENGTH = 4

INS_VERIFY = 0x20
INS_SIGN = 0x2A
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0


@dataclass(frozen=True, slots=True)
class Decision:
    """The firewall's verdict on one command: allowed or not, and why."""

    allowed: bool
    reason: str


class Applet(Enum):
    """What the firewall knows is selected at card level."""

    UNKNOWN = "unknown"  # power-up (GlobalPlatform ISD) or after any SELECT we can't vouch for
    JPKI = "jpki"


_ALLOW = Decision(True, "allowed")
_RETAP = "one try left: the card must be taken off the reader and tapped again"


def _refuse(reason: str) -> Decision:
    return Decision(False, reason)


class LastTry(Protocol):
    """The re-tap rule's memory, as the firewall of one card session sees it."""

    def seen(self, tries: int | None) -> None:
        """The card answered that it has `tries` left (None: verified, counter full)."""
        ...

    def armed(self) -> bool:
        """True when a card was put on the reader after one try left was first seen."""
        ...

    def spend(self) -> bool:
        """Use the arming up before the last try is sent; False if it was not armed."""
        ...


class NeverArmed:
    """No memory of re-taps: the last try is never spent (a firewall on its own)."""

    def seen(self, tries: int | None) -> None:
        """Nothing to remember."""

    def armed(self) -> bool:
        """Never armed."""
        return False

    def spend(self) -> bool:
        """Never armed."""
        return False


@dataclass(frozen=True, slots=True)
class TriesSeen:
    """What the card last said about its PIN counter: `tries` left (None: verified)."""

    tries: int | None


class Firewall:
    """Allowlist state machine for one card session (reset it on insert/power-up).

    `last_try`: the re-tap rule's memory for this card session (bridge.lasttry); without
    one, the guard never lets the last try go (fail closed).
    """

    def __init__(self, last_try: LastTry | None = None) -> None:
        self.applet = Applet.UNKNOWN
        self.ef: int | None = None
        self.last_try: LastTry = last_try if last_try is not None else NeverArmed()
        # Tries left from the last data-less VERIFY the card answered (None = verified),
        # consumed by `sealed_verify`; `_fresh_tries` says whether it is still unused.
        self._tries: int | None = None
        self._fresh_tries = False
        # The last PIN count the card answered (tries read or VERIFY), for the caller to
        # report; set to None before a command to learn what that command saw. Not
        # cleared by `reset`: the card did say it.
        self.tries_seen: TriesSeen | None = None

    def reset(self) -> None:
        """Forget everything: the card was inserted, powered or reset (ISD is selected).

        The re-tap memory (`last_try`) is not touched: a reset is not a re-tap.
        """
        self.applet = Applet.UNKNOWN
        self.ef = None
        self._tries = None
        self._fresh_tries = False

    # -- decisions -------------------------------------------------------------------

    def check(self, command: Command | bytes) -> Decision:
        """Decide whether `command` may be sent to the card now; log refusals."""
        if not isinstance(command, Command):
            raw = bytes(command)
            try:
                command = parse_command(raw)
            except MalformedAPDU:
                return self._log(_refuse("malformed APDU"), raw[:4])
        decision = self._decide(command)
        return self._log(decision, command.header)

    def _log(self, decision: Decision, header: bytes) -> Decision:
        if not decision.allowed:
            # Header bytes only: the data of a refused command is never logged.
            log.warning("APDU refused: %s (header %s)", decision.reason, header.hex(" ").upper())
        return decision

    def _decide(self, c: Command) -> Decision:
        # Logical channels (CLA low bits) and secure messaging (08/0C), chaining (10):
        # the card would answer 6881/6882 at best; the JPKI commands use 00 and 80 only.
        if c.cla not in (0x00, 0x80):
            return _refuse(f"CLA {c.cla:02X} not allowed (only 00, and 80 for 2A)")
        if c.cla == 0x80 and c.ins != INS_SIGN:
            return _refuse(f"CLA 80 only for 2A, not INS {c.ins:02X}")
        if c.ins == INS_SELECT:
            return self._decide_select(c)
        if c.ins == INS_READ_BINARY:
            return self._decide_read(c)
        if c.ins == INS_VERIFY:
            return self._decide_verify(c)
        if c.ins == INS_SIGN and c.cla == 0x80:
            return self._decide_sign(c)
        return _refuse(f"INS {c.ins:02X} not allowed")

    def _decide_select(self, c: Command) -> Decision:
        if c.extended:
            return _refuse("SELECT with extended lengths")
        if c.le is not None:
            # A case-4 SELECT asks for FCI/FCP; the JPKI commands use P2 = 0C and no Le.
            return _refuse("SELECT with Le")
        if c.p1 == 0x04 and c.p2 == 0x0C:
            # The card accepts a prefix of an AID: only the exact 10-byte AID may pass.
            if c.data != JPKI_AID:
                return _refuse("SELECT by DF name of an AID other than the exact JPKI AID")
            return _ALLOW
        if c.p1 == 0x02 and c.p2 == 0x0C:
            if len(c.data) != 2:
                return _refuse("SELECT EF with a file id that is not 2 bytes")
            fid = int.from_bytes(c.data, "big")
            if fid not in ALLOWED_EFS:
                return _refuse(f"SELECT of EF {fid:04X} not allowed")
            if self.applet is not Applet.JPKI:
                return _refuse("SELECT EF outside JPKI-AP")
            return _ALLOW
        # 00 A4 00 00 (MF), by path (08/09), parent (03), child DF (01), other P2s.
        return _refuse(f"SELECT P1={c.p1:02X} P2={c.p2:02X} not allowed")

    def _decide_read(self, c: Command) -> Decision:
        if c.p1 & 0x80:
            # P1 = 80|sfi reads an EF by short id without SELECT: it bypasses our state.
            return _refuse("READ BINARY with a short EF id")
        if c.data:
            return _refuse("READ BINARY with data")
        if c.le is None:
            return _refuse("READ BINARY without Le")
        if self.applet is not Applet.JPKI or self.ef not in READABLE_EFS:
            return _refuse("READ BINARY when EF 000A/000B of JPKI-AP is not selected")
        return _ALLOW

    def _decide_verify(self, c: Command) -> Decision:
        if c.p1 != 0x00 or c.p2 != 0x80:
            # P2 = 80|sfi names a PIN EF without SELECT (e.g. the signing password).
            return _refuse(f"VERIFY P1={c.p1:02X} P2={c.p2:02X} not allowed")
        if c.data:
            return _refuse("VERIFY with data only comes from the sealed-PIN command")
        if c.le is not None or c.extended:
            return _refuse("VERIFY with Le or extended lengths")
        if self.applet is not Applet.JPKI or self.ef != EF_AUTH_PIN:
            return _refuse("VERIFY when EF 0018 of JPKI-AP is not selected")
        return _ALLOW

    def _decide_sign(self, c: Command) -> Decision:
        if c.p1 != 0x00 or c.p2 != 0x80:
            # P2 = 80|sfi picks a key without SELECT (e.g. 9A, the signing key).
            return _refuse(f"COMPUTE DIGITAL SIGNATURE P1={c.p1:02X} P2={c.p2:02X} not allowed")
        if c.extended:
            return _refuse("COMPUTE DIGITAL SIGNATURE with extended lengths")
        if len(c.data) != DIGEST_INFO_LENGTH or not c.data.startswith(SHA256_DIGEST_INFO_PREFIX):
            return _refuse("COMPUTE DIGITAL SIGNATURE of anything but a SHA-256 DigestInfo")
        if c.le != 256:
            return _refuse("COMPUTE DIGITAL SIGNATURE without Le 00")
        if self.applet is not Applet.JPKI or self.ef != EF_AUTH_KEY:
            return _refuse("COMPUTE DIGITAL SIGNATURE when EF 0017 of JPKI-AP is not selected")
        return _ALLOW

    # -- state -----------------------------------------------------------------------

    def observe(self, command: Command, response: Response) -> None:
        """Update the state from what the card answered to a command that was sent."""
        if command.ins == INS_SELECT:
            self._observe_select(command, response)
        elif command.ins == INS_VERIFY and not command.data:
            self._observe_tries(command, response)
        elif command.ins == INS_VERIFY:
            self._observe_verify(command, response)

    def _observe_select(self, c: Command, response: Response) -> None:
        ok = response.sw == SW.OK
        plain = c.cla == 0x00 and c.le is None and not c.extended
        fid = int.from_bytes(c.data, "big") if len(c.data) == 2 else None
        if plain and (c.p1, c.p2, c.data) == (0x04, 0x0C, JPKI_AID):
            self.applet = Applet.JPKI if ok else Applet.UNKNOWN
            self.ef = None
        elif plain and (c.p1, c.p2) == (0x02, 0x0C) and fid in ALLOWED_EFS:
            # A failed SELECT EF: assume nothing about which EF is current (fail closed).
            self.ef = fid if ok and self.applet is Applet.JPKI else None
        else:
            # Any other SELECT (only reachable if the caller bypassed `check`): we can
            # no longer vouch for the current applet. Select-MF answers 9000 yet
            # "changes nothing" on real cards; we do not rely on such quirks.
            self.applet, self.ef = Applet.UNKNOWN, None
        self._fresh_tries = False

    def _observe_tries(self, c: Command, response: Response) -> None:
        self._fresh_tries = False
        if (c.cla, c.p1, c.p2, c.le, c.extended) != (0x00, 0x00, 0x80, None, False):
            return
        if self.applet is not Applet.JPKI or self.ef != EF_AUTH_PIN:
            return
        try:
            self._tries = tries_from_sw(response.sw)
        except ValueError:
            return
        self._fresh_tries = True
        self._seen(self._tries)

    def _observe_verify(self, c: Command, response: Response) -> None:
        """The answer to the sealed VERIFY: the PIN count it left (63Cx, 6984, or 9000)."""
        self._fresh_tries = False
        if (c.cla, c.p1, c.p2, c.le, c.extended) != (0x00, 0x00, 0x80, None, False):
            return
        if len(c.data) != PIN_LENGTH or self.applet is not Applet.JPKI or self.ef != EF_AUTH_PIN:
            return
        try:
            tries = tries_from_sw(response.sw)  # 9000: verified, the counter is full again
        except ValueError:
            return
        self._seen(tries)

    def _seen(self, tries: int | None) -> None:
        self.tries_seen = TriesSeen(tries)
        self.last_try.seen(tries)

    # -- the sealed-PIN command ------------------------------------------------------

    def sealed_verify(self, pin: str, tries_left: int | None, confirmed: bool) -> Command:
        """Build the one VERIFY with data the firewall permits, behind the PIN guard.

        `tries_left` is what the data-less VERIFY just answered (None = already
        verified); it must match the firewall's own observation of that answer, which
        is consumed: every VERIFY needs a fresh tries read, so nothing can loop on
        VERIFY (never retry). With one try left: refused until the card has left the
        reader and come back since one try left was first seen (`last_try`, code
        pin_retap), then until the citizen confirms (pin_last_try), then sent once.
        Raises PINFormatError, PINGuardRefused or CommandRefused.
        """
        if len(pin) != PIN_LENGTH or not all("0" <= ch <= "9" for ch in pin):
            raise PINFormatError(f"PIN must be {PIN_LENGTH} ASCII digits")
        if self.applet is not Applet.JPKI or self.ef != EF_AUTH_PIN:
            raise self._refused("sealed VERIFY when EF 0018 of JPKI-AP is not selected")
        if not self._fresh_tries:
            raise self._refused("sealed VERIFY without a fresh tries-left read")
        if tries_left != self._tries:
            raise self._refused("tries left does not match what the card answered")
        self._fresh_tries = False  # one VERIFY per tries read
        # Rule 5: a locked PIN (63C0 / 6984) only resets at a municipal office, and the
        # attempt that uses the last try locks the card. A confirmation from the page
        # cannot tell a person from a script holding a staff cookie; the card leaving
        # the reader and coming back can (bridge.lasttry). Both are needed, and the
        # arming is used up before the VERIFY is sent: one attempt per re-tap.
        if tries_left == 0:
            raise self._guard("PIN locked", Code.PIN_LOCKED, 0)
        if tries_left == 1:
            if not self.last_try.armed():
                raise self._guard(_RETAP, Code.PIN_RETAP, 1)
            if not confirmed:
                raise self._guard("one try left: the citizen must confirm", Code.PIN_LAST_TRY, 1)
            if not self.last_try.spend():
                raise self._guard(_RETAP, Code.PIN_RETAP, 1)
        return Command(0x00, INS_VERIFY, 0x00, 0x80, pin.encode("ascii"))

    def _refused(self, reason: str) -> CommandRefused:
        log.warning("APDU refused: %s (header 00 20 00 80)", reason)
        return CommandRefused(reason)

    def _guard(self, reason: str, code: Code, tries: int) -> PINGuardRefused:
        log.warning("PIN guard refused VERIFY: %s", reason)
        return PINGuardRefused(reason, code=code, tries_left=tries)


def tries_from_sw(sw: int) -> int | None:
    """Tries left from a data-less VERIFY's SW (None = verified); ValueError otherwise."""
    if sw == SW.OK:  # already verified in this card session
        return None
    if is_wrong_pin(sw):
        return sw & 0x0F
    if sw == SW.AUTH_METHOD_BLOCKED:
        return 0
    raise ValueError(f"SW {sw:04X} does not say tries left")


SendOne = Callable[[Command], Response]


def _simulate(fw: Firewall, batch: Batch) -> None:
    """Refuse the whole batch up front if a step would be refused even if all succeed."""
    # Every allowed command needs a positive state that only a successful SELECT gives,
    # so the all-9000 path is the most permissive: a step refused there is refused on
    # every path, and then nothing of the batch is sent.
    dry = Firewall()
    dry.applet, dry.ef = fw.applet, fw.ef
    for step in batch:
        decision = dry.check(step.command)
        if not decision.allowed:
            raise CommandRefused(decision.reason)
        dry.observe(step.command, Response(b"", SW.OK))


def filter_batch(fw: Firewall, batch: Batch, send: SendOne) -> list[Response]:
    """`run_batch` behind the firewall: a refused step raises CommandRefused, unsent.

    The batch is checked on a dry run first (nothing is sent if any step would be
    refused), then step by step against what the card really answered.
    """
    _simulate(fw, batch)
    responses: list[Response] = []
    for step in batch:
        decision = fw.check(step.command)
        if not decision.allowed:
            raise CommandRefused(decision.reason)
        response = send(step.command)
        fw.observe(step.command, response)
        responses.append(response)
        if response.sw not in step.proceed_on:
            break
    return responses


def run_sealed_verify(
    fw: Firewall, pin: str, *, confirmed: bool, send: SendOne
) -> tuple[int | None, Response]:
    """The sealed-PIN command: read tries left, apply the guard, VERIFY once.

    Returns the tries left read before the VERIFY and the card's answer to it; raises
    PINGuardRefused (nothing sent but the tries read), PINFormatError, CommandRefused,
    or CardStatusError / NotMyNumberCard when a SELECT or the tries read fails.
    """
    tries_cmd = Command(0x00, INS_VERIFY, 0x00, 0x80)
    select_ap = Command(0x00, INS_SELECT, 0x04, 0x0C, JPKI_AID)
    select_pin = Command(0x00, INS_SELECT, 0x02, 0x0C, EF_AUTH_PIN.to_bytes(2, "big"))
    for command in (select_ap, select_pin, tries_cmd):
        decision = fw.check(command)
        if not decision.allowed:
            raise CommandRefused(decision.reason)
        response = send(command)
        fw.observe(command, response)
        if command is select_ap and response.sw != SW.OK:
            raise NotMyNumberCard(response.sw)
        if command is select_pin and response.sw != SW.OK:
            raise CardStatusError(
                "SELECT EF 0018 failed", sw=response.sw, code=Code.NOT_MY_NUMBER_CARD
            )
    try:
        tries = tries_from_sw(response.sw)
    except ValueError:
        raise CardStatusError("reading PIN tries failed", sw=response.sw) from None
    verify = fw.sealed_verify(pin, tries, confirmed)
    answer = send(verify)
    fw.observe(verify, answer)
    return tries, answer
