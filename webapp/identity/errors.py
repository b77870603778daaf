"""Typed identity errors: each carries a code and a Japanese and an English message."""

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


MESSAGES: dict[Code, tuple[str, str]] = {
    Code.NOT_REGISTERED: (
        "このカードはまだマイキーIDに登録されていません。",
        "This card is not registered to a MyKey ID yet.",
    ),
    Code.NO_LINK: (
        "この施設の利用者番号はまだ登録されていません。",
        "No customer number is linked for this facility yet.",
    ),
    Code.NUMBER_INVALID: ("番号が正しくありません。", "The number is not valid."),
    Code.ALREADY_LINKED: (
        "この施設の番号はすでに登録されています。変更するには、いったん解除してください。",
        "A number for this facility is already linked. Unlink it first to change it.",
    ),
    Code.NUMBER_TAKEN: (
        "この番号は別のマイキーIDに登録されています。施設の窓口にお問い合わせください。",
        "This number is linked to another MyKey ID. Please ask the facility's counter.",
    ),
    Code.TERMS_NOT_ACCEPTED: (
        "利用規約に同意してください。",
        "Please accept the terms of use.",
    ),
    Code.TERMS_OUTDATED: (
        "利用規約が更新されました。新しい利用規約をお読みのうえ、同意してください。",
        "The terms of use have changed. Please read and accept the new terms.",
    ),
    Code.REROLL_LIMIT: (
        "マイキーIDの作り直しは、これ以上できません。",
        "This MyKey ID cannot be re-created any more times.",
    ),
    Code.REROLL_CLOSED: (
        "マイキーIDの作り直しは、作成直後でサービスIDの登録前に限ります。",
        "A MyKey ID can only be re-created right after creation, before any service is linked.",
    ),
}


class IdentityError(Exception):
    """Base of identity errors; `code`, `message_ja` and `message_en` say what happened."""

    code: Code

    def __init__(self, message_ja: str | None = None, message_en: str | None = None) -> None:
        default_ja, default_en = MESSAGES[self.code]
        self.message_ja = message_ja or default_ja
        self.message_en = message_en or default_en
        super().__init__(f"{self.code.value}: {self.message_en}")

    def message(self, locale: str) -> str:
        """The message in `locale` ('ja' or 'en')."""
        return self.message_en if str(locale).startswith("en") else self.message_ja


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
        super().__init__(error.message_ja, error.message_en)


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
