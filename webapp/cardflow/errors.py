"""What can go wrong with a card at a terminal: one code per thing a person can act on."""

from __future__ import annotations

import enum

from bridge.errors import CardError, Code
from webapp.jpki.errors import Reason, VerificationError


class FlowCode(enum.StrEnum):
    """Every outcome a terminal page shows; `messages.message_for` words each one."""

    NO_CARD = "no_card"
    CARD_REMOVED = "card_removed"
    BRIDGE_OFFLINE = "bridge_offline"
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
    PIN_LAST_TRY = "pin_last_try"
    PIN_LOCKED = "pin_locked"
    PIN_FORMAT = "pin_format"
    AUTH_FAILED = "auth_failed"
    FLOW_EXPIRED = "flow_expired"
    NOT_REGISTERED = "not_registered"
    NO_LINK = "no_link"
    SESSION_ENDED = "session_ended"
    BUSY = "busy"
    SERVICE_UNAVAILABLE = "service_unavailable"  # our side (e.g. the nonce store): retry


# Codes after which the same card cannot go on (the page returns to "place your card").
FINAL = frozenset(
    {
        FlowCode.NOT_MY_NUMBER_CARD,
        FlowCode.UNTRUSTED,
        FlowCode.EXPIRED,
        FlowCode.NOT_YET_VALID,
        FlowCode.REVOKED,
        FlowCode.PIN_LOCKED,
        FlowCode.CARD_REMOVED,
        FlowCode.SESSION_ENDED,
    }
)


class CardFlowError(Exception):
    """A card step failed; `code` says what, `tries_left` is set for PIN outcomes."""

    def __init__(self, code: FlowCode, detail: str = "", *, tries_left: int | None = None):
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.tries_left = tries_left

    @property
    def final(self) -> bool:
        """True when this card cannot continue (start again with a card)."""
        return self.code in FINAL


_CARD_CODES: dict[Code, FlowCode] = {
    Code.WRONG_PIN: FlowCode.WRONG_PIN,
    Code.PIN_LOCKED: FlowCode.PIN_LOCKED,
    Code.PIN_LAST_TRY: FlowCode.PIN_LAST_TRY,
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
    return CardFlowError(_REASONS.get(exc.reason, FlowCode.UNTRUSTED), exc.reason.value)
