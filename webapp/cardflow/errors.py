"""What can go wrong with a card at a terminal: one code per thing a person can act on."""

from __future__ import annotations

import enum

from bridge.errors import CardError, Code
from webapp.jpki.crl import CrlReason
from webapp.jpki.errors import Reason, VerificationError

_SUPERSEDED = CrlReason.SUPERSEDED


class FlowCode(enum.StrEnum):
    """Every outcome a terminal page shows; `messages.message_for` words each one."""

    NO_CARD = "no_card"
    CARD_REMOVED = "card_removed"
    BRIDGE_OFFLINE = "bridge_offline"  # paired, not connected now: it comes back by itself
    # No bridge of the terminal is paired (revoked, or never paired): it never comes back
    # by itself; an administrator pairs one (the web layer tells it from BRIDGE_OFFLINE).
    BRIDGE_UNPAIRED = "bridge_unpaired"
    READER_MISSING = "reader_missing"
    TIMEOUT = "timeout"
    NOT_MY_NUMBER_CARD = "not_my_number_card"
    CARD_UNREADABLE = "card_unreadable"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    CRL_UNAVAILABLE = "crl_unavailable"
    WRONG_PIN = "wrong_pin"
    PIN_LAST_TRY = "pin_last_try"  # one try left: the citizen must confirm first
    PIN_RETAP = "pin_retap"  # one try left: the bridge waits for the card to be re-tapped
    PIN_LOCKED = "pin_locked"
    PIN_FORMAT = "pin_format"
    AUTH_FAILED = "auth_failed"
    FLOW_EXPIRED = "flow_expired"
    NOT_REGISTERED = "not_registered"
    NO_LINK = "no_link"
    SESSION_ENDED = "session_ended"
    BUSY = "busy"
    SERVICE_UNAVAILABLE = "service_unavailable"  # our side (e.g. the nonce store): retry
    OUT_OF_ORDER = "out_of_order"  # a step the flow's state does not allow now
    CANCELLED = "cancelled"
    # The two-card renewal step (webapp/kiosk/renew.py):
    SAME_CARD = "same_card"  # the "new" card is the old one: place the other card
    OLD_CARD_REVOKED = "old_card_revoked"  # revoked for another reason than a renewal


# Codes after which the same card cannot go on (the page returns to "place your card").
FINAL = frozenset(
    {
        FlowCode.NOT_MY_NUMBER_CARD,
        FlowCode.UNTRUSTED,
        FlowCode.EXPIRED,
        FlowCode.NOT_YET_VALID,
        FlowCode.REVOKED,
        FlowCode.PIN_LOCKED,
        FlowCode.PIN_RETAP,
        FlowCode.CARD_REMOVED,
        FlowCode.SESSION_ENDED,
        FlowCode.CANCELLED,
        FlowCode.NO_CARD,
        FlowCode.BRIDGE_OFFLINE,
        FlowCode.BRIDGE_UNPAIRED,
        FlowCode.READER_MISSING,
        FlowCode.FLOW_EXPIRED,
        FlowCode.OUT_OF_ORDER,
        FlowCode.AUTH_FAILED,
        FlowCode.OLD_CARD_REVOKED,
    }
)

# The HTTP status of each outcome in the one JSON error format: 409 the flow cannot go
# on as asked (start again), 422 the card or the input said no, 503 try again shortly.
STATUS: dict[FlowCode, int] = {
    FlowCode.NO_CARD: 409,
    FlowCode.CARD_REMOVED: 409,
    FlowCode.SESSION_ENDED: 409,
    FlowCode.FLOW_EXPIRED: 409,
    FlowCode.OUT_OF_ORDER: 409,
    FlowCode.CANCELLED: 409,
    FlowCode.BUSY: 409,
    FlowCode.SAME_CARD: 409,
    FlowCode.PIN_LOCKED: 409,
    FlowCode.PIN_RETAP: 409,
    FlowCode.BRIDGE_OFFLINE: 503,
    FlowCode.BRIDGE_UNPAIRED: 503,
    FlowCode.READER_MISSING: 503,
    FlowCode.TIMEOUT: 503,
    FlowCode.CRL_UNAVAILABLE: 503,
    FlowCode.SERVICE_UNAVAILABLE: 503,
}
DEFAULT_STATUS = 422


class CardFlowError(Exception):
    """A card step failed; `code` says what, `tries_left` is set for PIN outcomes.

    `reason`: the verifier's finer reason (webapp/jpki/errors.py), for the operator's log.
    `renewed`: a REVOKED card whose CRL entry says superseded (a renewed card's old one):
    the citizen is told to use the new card (or "I have a new card"), not that it was lost.
    """

    def __init__(
        self,
        code: FlowCode,
        detail: str = "",
        *,
        tries_left: int | None = None,
        reason: str | None = None,
        renewed: bool = False,
    ):
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.tries_left = tries_left
        self.reason = reason
        self.renewed = renewed

    @property
    def final(self) -> bool:
        """True when this card cannot continue (start again with a card)."""
        return self.code in FINAL

    @property
    def status(self) -> int:
        """The HTTP status this outcome is answered with."""
        return STATUS.get(self.code, DEFAULT_STATUS)


_CARD_CODES: dict[Code, FlowCode] = {
    Code.WRONG_PIN: FlowCode.WRONG_PIN,
    Code.PIN_LOCKED: FlowCode.PIN_LOCKED,
    Code.PIN_LAST_TRY: FlowCode.PIN_LAST_TRY,
    Code.PIN_RETAP: FlowCode.PIN_RETAP,
    Code.PIN_FORMAT: FlowCode.PIN_FORMAT,
    Code.PIN_NOT_VERIFIED: FlowCode.AUTH_FAILED,
    Code.NOT_MY_NUMBER_CARD: FlowCode.NOT_MY_NUMBER_CARD,
    Code.NO_CARD: FlowCode.NO_CARD,
    Code.CARD_REMOVED: FlowCode.CARD_REMOVED,
    Code.READER_MISSING: FlowCode.READER_MISSING,
    Code.BRIDGE_OFFLINE: FlowCode.BRIDGE_OFFLINE,
    Code.TIMEOUT: FlowCode.TIMEOUT,
}

_REASONS: dict[Reason, FlowCode] = {
    Reason.EXPIRED: FlowCode.EXPIRED,
    Reason.NOT_YET_VALID: FlowCode.NOT_YET_VALID,
    Reason.REVOKED: FlowCode.REVOKED,
    Reason.CRL_UNAVAILABLE: FlowCode.CRL_UNAVAILABLE,
    Reason.BAD_SIGNATURE: FlowCode.AUTH_FAILED,
    Reason.NONCE_UNKNOWN_OR_USED: FlowCode.FLOW_EXPIRED,
    Reason.NONCE_EXPIRED: FlowCode.FLOW_EXPIRED,
    Reason.PURPOSE_MISMATCH: FlowCode.AUTH_FAILED,
    Reason.TERMINAL_MISMATCH: FlowCode.AUTH_FAILED,
    Reason.NONCE_STORE_UNAVAILABLE: FlowCode.SERVICE_UNAVAILABLE,
}


def from_card_error(exc: CardError) -> CardFlowError:
    """The flow error for a card/transport error (PIN codes keep their tries left)."""
    code = _CARD_CODES.get(exc.code, FlowCode.CARD_UNREADABLE)
    tries = getattr(exc, "tries_left", None)
    if code == FlowCode.WRONG_PIN and tries == 0:
        code = FlowCode.PIN_LOCKED
    return CardFlowError(code, str(exc), tries_left=tries if isinstance(tries, int) else None)


def from_verification_error(exc: VerificationError) -> CardFlowError:
    """The flow error for a refused certificate or signature (chain problems: untrusted)."""
    renewed = getattr(exc, "crl_reason", None) == _SUPERSEDED
    code = _REASONS.get(exc.reason, FlowCode.UNTRUSTED)
    return CardFlowError(code, exc.reason.value, reason=exc.reason.value, renewed=renewed)
