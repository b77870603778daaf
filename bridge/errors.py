"""Typed errors for everything between a card and the platform.

Each error carries a `code` (an enum a caller can switch on, e.g. to pick the message a
citizen sees) and says whose fault it was: the card's answer, the transport, or a
refusal by our own guards. Standard library only.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """What went wrong, in terms a caller can act on."""

    WRONG_PIN = "wrong_pin"
    PIN_LOCKED = "pin_locked"
    PIN_LAST_TRY = "pin_last_try"  # refused by our PIN guard: needs explicit confirmation
    PIN_RETAP = "pin_retap"  # refused by our PIN guard: the card must leave and come back
    PIN_FORMAT = "pin_format"
    PIN_NOT_VERIFIED = "pin_not_verified"
    NOT_MY_NUMBER_CARD = "not_my_number_card"
    CERTIFICATE_UNREADABLE = "certificate_unreadable"
    UNEXPECTED_STATUS = "unexpected_status"
    NO_CARD = "no_card"
    CARD_REMOVED = "card_removed"
    READER_MISSING = "reader_missing"
    BRIDGE_OFFLINE = "bridge_offline"
    REFUSED = "refused"  # refused by the APDU firewall before reaching the card
    TIMEOUT = "timeout"
    TRANSPORT = "transport"


class CardError(Exception):
    """Base class: a card operation did not complete."""

    code: Code = Code.UNEXPECTED_STATUS

    def __init__(self, message: str, *, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class CardStatusError(CardError):
    """The card answered with a status word the operation cannot continue from."""

    def __init__(self, message: str, *, sw: int, code: Code = Code.UNEXPECTED_STATUS) -> None:
        super().__init__(f"{message} (SW {sw:04X})", sw=sw)
        self.code = code


class WrongPIN(CardStatusError):
    """VERIFY failed; `tries_left` attempts remain (0 means the card is now locked)."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left", sw=0x63C0 | tries_left)
        self.code = Code.WRONG_PIN if tries_left else Code.PIN_LOCKED
        self.tries_left = tries_left


class PINLocked(CardStatusError):
    """The PIN is blocked; only a municipal office can reset it."""

    def __init__(self, sw: int = 0x6984) -> None:
        super().__init__("PIN locked", sw=sw, code=Code.PIN_LOCKED)


class PINGuardRefused(CardError):
    """Our own PIN guard refused to send a VERIFY (rule: never lock a card)."""

    def __init__(self, message: str, *, code: Code, tries_left: int) -> None:
        super().__init__(message)
        self.code = code
        self.tries_left = tries_left


class PINFormatError(CardError):
    """The PIN is not 4 ASCII digits; nothing was sent to the card."""

    code = Code.PIN_FORMAT


class NotMyNumberCard(CardStatusError):
    """The card has no JPKI applet (or not the expected files)."""

    def __init__(self, sw: int) -> None:
        super().__init__("not a My Number Card (no JPKI-AP)", sw=sw, code=Code.NOT_MY_NUMBER_CARD)


class TransportError(CardError):
    """The link to the card failed; `code` says how (removed, no card, offline, ...)."""

    def __init__(self, message: str, *, code: Code = Code.TRANSPORT) -> None:
        super().__init__(message)
        self.code = code


class CommandRefused(CardError):
    """The APDU firewall refused a command before it reached the card."""

    code = Code.REFUSED
