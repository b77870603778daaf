"""Typed identity errors: each carries a code; the web layer words it (webapp.catalogue)."""

from __future__ import annotations

import enum

from ..providers.numbers import NumberFormatError, Reason


class Code(enum.StrEnum):
    """What went wrong, for views and JSON APIs to branch on."""

    NOT_REGISTERED = "not_registered"
    NO_LINK = "no_link"
    NUMBER_INVALID = "number_invalid"
    ALREADY_LINKED = "already_linked"
    NUMBER_TAKEN = "number_taken"
    TERMS_NOT_ACCEPTED = "terms_not_accepted"
    TERMS_OUTDATED = "terms_outdated"
    REROLL_LIMIT = "reroll_limit"
    REROLL_CLOSED = "reroll_closed"


class IdentityError(Exception):
    """Base of identity errors; `code` says what happened (webapp.catalogue words it)."""

    code: Code

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.code.value}: {detail}" if detail else self.code.value)


class NotRegistered(IdentityError):
    """The card has no MyKey ID."""

    code = Code.NOT_REGISTERED


class NoLink(IdentityError):
    """The MyKey ID has no link for this provider."""

    code = Code.NO_LINK


class NumberInvalid(IdentityError):
    """The customer number breaks the provider's format rule; `reason` says how."""

    code = Code.NUMBER_INVALID

    def __init__(self, error: NumberFormatError) -> None:
        self.reason: Reason = error.reason
        super().__init__(error.reason.value)


class AlreadyLinked(IdentityError):
    """The MyKey ID already has a link for this provider (one per provider)."""

    code = Code.ALREADY_LINKED


class NumberTaken(IdentityError):
    """The customer number is linked to another MyKey ID."""

    code = Code.NUMBER_TAKEN


class TermsNotAccepted(IdentityError):
    """The citizen has not accepted the provider's terms."""

    code = Code.TERMS_NOT_ACCEPTED


class TermsOutdated(IdentityError):
    """The citizen accepted an older version of the provider's terms."""

    code = Code.TERMS_OUTDATED


class RerollLimit(IdentityError):
    """No re-rolls left."""

    code = Code.REROLL_LIMIT


class RerollClosed(IdentityError):
    """Re-rolling is over: too late, or a service is already linked."""

    code = Code.REROLL_CLOSED
