"""The card I/O of a flow: read and check the certificate, read the tries, the sealed PIN.

Plain Python (no Flask, no database): each function takes the `TerminalLink` (any
worker reaches any terminal's bridge through it), runs the card driver's sans-IO
operations (bridge/jpki.py) over it, and turns every failure into a `CardFlowError`.
The state machine (machine.py) decides what may happen next; this module only does it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge import jpki
from bridge.errors import CardError, Code, TransportError
from bridge.transport import drive
from webapp.jpki import VerificationError, VerifiedCard, Verifier
from webapp.terminals.interfaces import TerminalLink

from .errors import CardFlowError, FlowCode, from_card_error, from_verification_error

READ_TIMEOUT = 10.0
STATUS_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class CardOnReader:
    """The card a terminal's bridge holds now (reader and card session epoch)."""

    reader: str
    epoch: int
    bridge_id: str


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    """Whether the terminal's bridge is online, and the newest card on it if any."""

    online: bool
    card: CardOnReader | None


@dataclass(frozen=True, slots=True)
class CertificateRead:
    """A certificate read from the card of `epoch` in `reader` (public data, DER)."""

    der: bytes
    reader: str
    epoch: int

    def to_json(self) -> dict[str, Any]:
        """For the flow store's short-lived card cache."""
        return {
            "der": base64.b64encode(self.der).decode("ascii"),
            "reader": self.reader,
            "epoch": self.epoch,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CertificateRead:
        """The read `to_json` gave (ValueError/KeyError/TypeError otherwise)."""
        return cls(base64.b64decode(obj["der"]), str(obj["reader"]), int(obj["epoch"]))


def terminal_status(link: TerminalLink, terminal_id: int) -> TerminalStatus:
    """Ask the worker holding the terminal's bridge for its readers (offline if nobody)."""
    try:
        reply = link.status(terminal_id, timeout=STATUS_TIMEOUT)
    except TransportError:
        return TerminalStatus(False, None)
    newest = reply.newest_card()
    if newest is None:
        return TerminalStatus(True, None)
    reader, card = newest
    return TerminalStatus(True, CardOnReader(reader, card.epoch, reply.bridge_id))


def read_certificate(
    link: TerminalLink, terminal_id: int, *, reader: str | None = None, epoch: int | None = None
) -> CertificateRead:
    """Read the user-authentication certificate (one batch; the newest card if no epoch)."""
    transport = link.card(terminal_id, reader=reader, epoch=epoch, timeout=READ_TIMEOUT)
    try:
        der = drive(jpki.read_certificate(), transport)
    except CardError as exc:
        raise from_card_error(exc) from exc
    if transport.reader is None or transport.epoch is None:
        raise CardFlowError(FlowCode.CARD_UNREADABLE, "the bridge did not name the card")
    return CertificateRead(der, transport.reader, transport.epoch)


def identify(verifier: Verifier, der: bytes, *, allow_superseded: bool = False) -> VerifiedCard:
    """Check a certificate (chain, validity, revocation): the card, without a PIN.

    `allow_superseded`: the two-card renewal step's old card only (a renewed
    certificate's CRL entry, reason superseded, is accepted and marked `superseded`).
    """
    try:
        if allow_superseded:
            return verifier.identify_superseded(der)
        return verifier.identify(der)
    except VerificationError as exc:
        raise from_verification_error(exc) from exc


def read_tries(
    link: TerminalLink, terminal_id: int, reader: str, epoch: int
) -> tuple[int | None, bool]:
    """The tries left (spending none) and whether the bridge would allow the last one."""
    transport = link.card(terminal_id, reader=reader, epoch=epoch, timeout=READ_TIMEOUT)
    try:
        tries = drive(jpki.read_pin_tries(), transport)
    except CardError as exc:
        raise from_card_error(exc) from exc
    return tries, bool(transport.last_try_armed)


def sealed_sign(
    link: TerminalLink,
    terminal_id: int,
    *,
    reader: str,
    epoch: int,
    sealed: Mapping[str, Any],
    command_id: str,
    digest_info: bytes,
    confirm_last_try: bool,
) -> bytes:
    """The sealed PIN and the signature in one round trip through the bridge.

    Raises the card driver's typed errors (WrongPIN with tries left, PINLocked, the
    bridge guard's PINGuardRefused, TransportError...), for the caller to feed the
    state machine.
    """
    transport = link.card(terminal_id, reader=reader, epoch=epoch, timeout=READ_TIMEOUT)
    outcome = transport.verify_sealed(
        sealed,
        command_id=command_id,
        confirm_last_try=confirm_last_try,
        then=jpki.sign_after_verify_steps(digest_info),
    )
    return jpki.sealed_signature(outcome.responses)


def is_removed(exc: CardError) -> bool:
    """Whether a card error means the pinned card is no longer on the reader."""
    return exc.code in (Code.CARD_REMOVED, Code.NO_CARD)
