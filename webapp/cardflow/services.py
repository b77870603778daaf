"""Card at a terminal: read a card, ask for its PIN, check the signed challenge.

Plain Python (no Flask): the caller passes the bus, the verifier and, where the bridge's
sealing key is needed, a database session. State between the two PIN steps is returned
to the caller (python-fido2's `register_begin -> (options, state)`), who keeps it server
side (the Flask session is signed; the nonce itself lives in the verifier's store and is
single use), and never takes purpose or terminal from the browser.

Every refusal is a `CardFlowError` with a `FlowCode`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from bridge import jpki, wire
from bridge.errors import CardError, Code, TransportError
from bridge.transport import drive
from webapp.bus import Bus
from webapp.jpki import Challenge, NonceStoreFull, VerificationError, VerifiedCard, Verifier
from webapp.terminals.models import BridgeDevice
from webapp.terminals.remote import RemoteTransport, sealed_verify_and_sign

from .errors import CardFlowError, FlowCode, from_card_error, from_verification_error

READ_TIMEOUT = 10.0
STATUS_TIMEOUT = 3.0


@dataclass(frozen=True)
class CardOnReader:
    """The card a terminal's bridge holds now (reader and card session epoch)."""

    reader: str
    epoch: int
    bridge_id: str


@dataclass(frozen=True)
class TerminalStatus:
    """Whether the terminal's bridge is online, and the card on it if any."""

    online: bool
    card: CardOnReader | None


@dataclass(frozen=True)
class CardRead:
    """A certificate read and accepted (chain, validity, revocation), without a PIN."""

    card: VerifiedCard
    reader: str
    epoch: int


@dataclass(frozen=True)
class PinPrompt:
    """What the PIN screen needs, and the state `complete_pin` takes back.

    The browser seals the PIN to `seal_public_key_b64u` for (`bridge_id`, `command_id`).
    """

    nonce: str
    bridge_id: str
    seal_public_key_b64u: str
    command_id: str
    tries_left: int | None
    purpose: str
    terminal_id: int
    reader: str
    epoch: int

    def state(self) -> dict[str, Any]:
        """The server-side state for `complete_pin` (JSON-ready)."""
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """What the browser may see (no nonce needed there: the server signs for it)."""
        return {
            "bridge_id": self.bridge_id,
            "seal_public_key": self.seal_public_key_b64u,
            "command_id": self.command_id,
            "tries_left": self.tries_left,
        }


def terminal_status(bus: Bus, terminal_id: int) -> TerminalStatus:
    """Ask the worker holding the terminal's bridge for its readers (offline if nobody)."""
    try:
        reply = RemoteTransport(bus, terminal_id, timeout=STATUS_TIMEOUT).status()
    except TransportError:
        return TerminalStatus(False, None)
    if not reply.get("ok", True):
        return TerminalStatus(False, None)
    bridge_id = str(reply.get("bridge_id", ""))
    cards = [
        CardOnReader(str(r["name"]), int(r["epoch"]), bridge_id)
        for r in reply.get("readers") or []
        if isinstance(r, dict) and isinstance(r.get("epoch"), int) and r.get("name")
    ]
    newest = max(cards, key=lambda c: c.epoch, default=None)
    return TerminalStatus(True, newest)


def card_present(bus: Bus, terminal_id: int, epoch: int) -> bool:
    """True while the card of card session `epoch` is still on the terminal's reader."""
    status = terminal_status(bus, terminal_id)
    return status.card is not None and status.card.epoch == epoch


def _read_certificate(transport: RemoteTransport) -> bytes:
    try:
        return drive(jpki.read_certificate(), transport)
    except CardError as exc:
        raise from_card_error(exc) from exc


def read_card(
    bus: Bus, verifier: Verifier, terminal_id: int, *, epoch: int | None = None
) -> CardRead:
    """Read the certificate in one batch and check it (identification, no PIN).

    `epoch` pins the card session (a card replaced meanwhile is CARD_REMOVED); without
    it, the card the bridge holds now is read.
    """
    transport = RemoteTransport(bus, terminal_id, epoch=epoch, timeout=READ_TIMEOUT)
    cert = _read_certificate(transport)
    try:
        card = verifier.identify(cert)
    except VerificationError as exc:
        raise from_verification_error(exc) from exc
    if transport.reader is None or transport.epoch is None:
        raise CardFlowError(FlowCode.CARD_UNREADABLE, "the bridge did not name the card")
    return CardRead(card, transport.reader, transport.epoch)


def _seal_key(s: Session, bridge_id: str, terminal_id: int) -> str:
    device = s.get(BridgeDevice, bridge_id)
    if device is None or device.terminal_id != terminal_id or device.revoked_at is not None:
        raise CardFlowError(FlowCode.BRIDGE_OFFLINE, "no active bridge for this terminal")
    return device.seal_public_key


def begin_pin(
    bus: Bus,
    verifier: Verifier,
    terminal_id: int,
    purpose: str,
    *,
    s: Session,
    epoch: int | None = None,
) -> PinPrompt:
    """Read the tries left (spending none) and issue the challenge for a PIN entry.

    Refuses a locked card (PIN_LOCKED). With one try left the prompt says so: the page
    must have the citizen confirm, and pass `confirm_last_try` to `complete_pin`.
    """
    status = terminal_status(bus, terminal_id)
    if not status.online:
        raise CardFlowError(FlowCode.BRIDGE_OFFLINE)
    if status.card is None:
        raise CardFlowError(FlowCode.NO_CARD)
    if epoch is not None and status.card.epoch != epoch:
        raise CardFlowError(FlowCode.CARD_REMOVED, "another card session")
    card = status.card
    key = _seal_key(s, card.bridge_id, terminal_id)
    transport = RemoteTransport(
        bus, terminal_id, reader=card.reader, epoch=card.epoch, timeout=READ_TIMEOUT
    )
    try:
        tries = drive(jpki.read_pin_tries(), transport)
    except CardError as exc:
        raise from_card_error(exc) from exc
    if tries == 0:
        raise CardFlowError(FlowCode.PIN_LOCKED, tries_left=0)
    try:
        challenge = verifier.challenges.issue(purpose, str(terminal_id))
    except NonceStoreFull as exc:
        raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, str(exc)) from exc
    except VerificationError as exc:  # NonceStoreUnavailable: Redis down
        raise from_verification_error(exc) from exc
    return PinPrompt(
        nonce=challenge.nonce,
        bridge_id=card.bridge_id,
        seal_public_key_b64u=key,
        command_id=wire.new_id(),
        tries_left=tries,
        purpose=purpose,
        terminal_id=terminal_id,
        reader=card.reader,
        epoch=card.epoch,
    )


def complete_pin(
    bus: Bus,
    verifier: Verifier,
    terminal_id: int,
    prompt_state: Mapping[str, Any],
    sealed_envelope: Mapping[str, Any],
    confirm_last_try: bool = False,
) -> VerifiedCard:
    """Sealed VERIFY + signature through the bridge, then the server-side check.

    The data signed is rebuilt from the server's own state (purpose, terminal, nonce);
    the nonce is burnt whatever happens. A wrong PIN raises WRONG_PIN with tries left.
    """
    try:
        prompt = PinPrompt(**dict(prompt_state))
    except TypeError:
        raise CardFlowError(FlowCode.FLOW_EXPIRED, "no PIN prompt to complete") from None
    if prompt.terminal_id != terminal_id:
        raise CardFlowError(FlowCode.AUTH_FAILED, "prompt of another terminal")
    transport = RemoteTransport(
        bus, terminal_id, reader=prompt.reader, epoch=prompt.epoch, timeout=READ_TIMEOUT
    )
    cert = _read_certificate(transport)
    challenge = Challenge(prompt.nonce, prompt.purpose, str(terminal_id), datetime.now(UTC))
    try:
        signature = sealed_verify_and_sign(
            transport,
            sealed_envelope,
            prompt.command_id,
            verifier.digest_info_to_sign(challenge),
            confirm_last_try=confirm_last_try,
        )
    except CardError as exc:
        _burn(verifier, prompt.nonce)
        error = from_card_error(exc)
        if error.code == FlowCode.CARD_UNREADABLE and exc.code == Code.REFUSED:
            error = CardFlowError(FlowCode.AUTH_FAILED, str(exc))
        raise error from exc
    try:
        return verifier.verify_authentication(
            cert,
            signature,
            prompt.nonce,
            expected_purpose=prompt.purpose,
            expected_terminal=str(terminal_id),
        )
    except VerificationError as exc:
        raise from_verification_error(exc) from exc


def _burn(verifier: Verifier, nonce: str) -> None:
    """Drop a challenge that can no longer be answered (single use either way)."""
    with contextlib.suppress(VerificationError):
        verifier.challenges.take(nonce)
