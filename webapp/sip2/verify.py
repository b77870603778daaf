"""A citizen proves a library number with the password they use at the library's own
system (OPAC): SIP2 63 Patron Information with AD, through the library's connector
bridge, answered 64 with BL (valid patron) and CQ (valid password).

The page seals the password to the connector bridge for one command id
(`sip2-patron`): the platform relays the envelope and never sees the password, nor logs
or stores it. Wrong passwords are throttled per library number, here (every worker
shares the counts in Redis) and again in the bridge, so the platform cannot be used to
guess a patron's password: an attempt is taken before the library system is asked
(webapp/throttle.py), a wrong password keeps it, anything else gives it back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from limits import parse

from bridge.sip2_wire import Sip2Patron

from ..terminals.remote import Sip2Failed
from ..throttle import AttemptLimiter, Budget
from .models import LibrarySip2
from .services import Sip2Gateway

PER_NUMBER = "5 per 15 minutes"  # the bridge allows as many (bridge/sip2/throttle.py)
PER_TERMINAL = "30 per 15 minutes"  # one kiosk trying many numbers


class CheckCode(enum.StrEnum):
    """Why a library password check did not verify the number (the catalogue words it)."""

    WRONG = "library_password_wrong"
    NOT_VALID = "library_card_not_valid"  # BL=N: the library says the card is not valid
    THROTTLED = "library_password_throttled"
    UNAVAILABLE = "library_system_unavailable"
    START_AGAIN = "library_password_start_again"  # the sealed password does not open


class PasswordCheckFailed(Exception):
    """The number was not verified; `code` says why, `retry_after` when throttled."""

    def __init__(self, code: CheckCode, retry_after: int = 0, *, wire_code: str = "") -> None:
        super().__init__(code.value)
        self.code = code
        self.retry_after = retry_after
        self.wire_code = wire_code


class PasswordThrottle:
    """Library password checks per library number and per terminal."""

    def __init__(
        self,
        limiter: AttemptLimiter,
        *,
        per_number: str = PER_NUMBER,
        per_terminal: str = PER_TERMINAL,
    ) -> None:
        self.limiter = limiter
        self.per_number = parse(per_number)
        self.per_terminal = parse(per_terminal)

    def budgets(self, provider_id: int, number: str, terminal_id: int) -> tuple[Budget, ...]:
        """The budgets one check takes from."""
        return (
            Budget(self.per_number, "sip2-password", f"{provider_id}:{number}"),
            Budget(self.per_terminal, "sip2-password-terminal", str(terminal_id)),
        )


@dataclass(frozen=True)
class PasswordCheck:
    """What the kiosk asks: this number, this sealed password, this command id."""

    number: str
    sealed: Mapping[str, Any]
    command_id: str
    terminal_id: int


def check_password(
    gateway: Sip2Gateway, throttle: PasswordThrottle, row: LibrarySip2, check: PasswordCheck
) -> Sip2Patron:
    """Ask the library system; the patron's answer when the number and password are
    right, else PasswordCheckFailed (nothing is written either way)."""
    budgets = throttle.budgets(row.provider_id, check.number, check.terminal_id)
    wait = throttle.limiter.take(*budgets)
    if wait:
        raise PasswordCheckFailed(CheckCode.THROTTLED, wait)
    try:
        answer = gateway.patron(row, check.number, sealed=check.sealed, command_id=check.command_id)
    except Sip2Failed as exc:
        throttle.limiter.give_back(*budgets)  # no answer: no guess was checked here
        if exc.wire_code == "sip2_throttled":
            raise PasswordCheckFailed(CheckCode.THROTTLED, 900, wire_code=exc.wire_code) from None
        # "refused": the command id the password was sealed for was used already (the
        # same sealed password sent twice): the page seals it again for a fresh one.
        if exc.wire_code in ("sip2_seal", "sip2_not_configured", "refused"):
            raise PasswordCheckFailed(CheckCode.START_AGAIN, wire_code=exc.wire_code) from None
        raise PasswordCheckFailed(CheckCode.UNAVAILABLE, wire_code=exc.wire_code) from None
    if answer.valid_patron is not True:
        # Kept: an unknown or blocked number is a failed try like a wrong password (a
        # stranger probing numbers learns nothing faster than by guessing passwords).
        raise PasswordCheckFailed(CheckCode.NOT_VALID)
    if answer.valid_password is not True:
        raise PasswordCheckFailed(CheckCode.WRONG)
    throttle.limiter.give_back(*budgets)
    return answer
