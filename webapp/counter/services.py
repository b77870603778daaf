"""Counter services (窓口端末業務): a tapped card to the library's own user number, and
staff-assisted linking. Plain Python over a database session (no Flask).

The card has already been read and checked by `webapp.cardflow` (a `VerifiedCard`:
certificate only, or PIN + signature); here we look the number up, shape it for the
provider's output mode (A digits, B barcode, C keyboard through the bridge), and link a
patron's existing number when the librarian vouches for it. Lookups leave only the
provider's daily count (identity.lookup); nothing here stores anything about the card.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from ..barcodes import RenderedBarcode
from ..barcodes import render as render_barcode
from ..identity import services as identity
from ..identity.errors import IdentityError, NotRegistered, NumberInvalid
from ..identity.models import CardBinding, ServiceLink, Verification
from ..jpki import VerifiedCard
from ..providers.models import Provider
from ..providers.numbers import DIGITS, NW7_DATA, Charset, NumberFormatError, parse_rule, validate
from ..providers.services import parse_counter_settings

# Challenge purposes: the signed data binds what the PIN was entered for (Web eID's rule).
PURPOSE_LOOKUP = "counter_lookup"
PURPOSE_LINK = "counter_link"
PURPOSE_VERIFY = "counter_verify"
SUFFIX_SIGNS = {"enter": "⏎", "tab": "⇥", "none": ""}


class CounterCode(enum.StrEnum):
    """Counter outcomes beyond the card flow's own codes."""

    PIN_REQUIRED = "pin_required"
    KEYBOARD_UNAVAILABLE = "keyboard_unavailable"
    BARCODE_UNAVAILABLE = "barcode_unavailable"
    # The link is a claim: staff check the library card once before it is used.
    UNVERIFIED = "unverified"


class CounterError(Exception):
    """A counter step refused: `code` is a CounterCode or an identity error code."""

    def __init__(self, code: str, detail: str = "", *, cause: Exception | None = None):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = str(code)
        self.cause = cause


class Keyboard(Protocol):
    """Keyboard output on the terminal's bridge (RemoteTransport.type_text)."""

    def type_text(self, text: str, *, suffix: str = "enter", allowed: str = DIGITS) -> None:
        """Type `text` then the suffix into the focused window."""


@dataclass(frozen=True)
class Presentation:
    """The number as the provider wants it shown or typed at its counter."""

    mode: str  # A | B | C
    number: str
    barcode: RenderedBarcode | None = None
    typed: bool = False
    suffix: str = "enter"
    terms_outdated: bool = False
    verification: str = Verification.UNVERIFIED
    problem: str | None = None  # e.g. keyboard_unavailable: the number is shown instead

    @property
    def verified(self) -> bool:
        """The number was shown to belong to the card holder (staff or the library)."""
        return self.verification in Verification.VERIFIED

    def as_json(self) -> dict[str, Any]:
        """JSON for the counter tab."""
        return {
            "mode": self.mode,
            "number": self.number,
            "barcode_svg": self.barcode.svg if self.barcode else None,
            "barcode_text": self.barcode.encoded if self.barcode else None,
            "typed": self.typed,
            "suffix": self.suffix,
            "suffix_sign": SUFFIX_SIGNS.get(self.suffix, ""),
            "terms_outdated": self.terms_outdated,
            "verification": self.verification,
            "verified": self.verified,
            "problem": self.problem,
        }


def settings_of(provider: Provider) -> dict[str, object]:
    """The provider's counter settings, validated, with defaults filled in."""
    return parse_counter_settings(provider.counter_settings, provider.number_rule)


def pin_required(provider: Provider) -> bool:
    """Whether this provider's counter asks for the PIN at lookup."""
    return bool(settings_of(provider)["pin_required"])


def allowed_characters(provider: Provider) -> str:
    """What keyboard output may type for this provider's numbers (its number charset)."""
    rule = parse_rule(provider.number_rule)
    chars = DIGITS if rule.charset is Charset.DIGITS else NW7_DATA
    if rule.check_variant == "c":  # mod 11 variant c may end in X
        chars += "X"
    return chars


def present(
    provider: Provider,
    number: str,
    *,
    keyboard: Keyboard | None = None,
    terms_outdated: bool = False,
    verification: str = Verification.STAFF,
) -> Presentation:
    """Shape `number` for the provider's output mode; in mode C, type it through `keyboard`.

    When the bridge cannot type (no keyboard backend, bridge gone), the number is shown
    in large digits instead and `problem` says why, so the counter can go on by hand.
    An unverified number never opens the account by itself: it is shown as digits only
    (no barcode to scan, never typed), with `problem` "unverified" for the notice, until
    staff have checked the library card once.
    """
    settings = settings_of(provider)
    mode, suffix = str(settings["mode"]), str(settings["keyboard_suffix"])
    common: dict[str, Any] = {"terms_outdated": terms_outdated, "verification": verification}
    if verification not in Verification.VERIFIED:
        return Presentation("A", number, problem=CounterCode.UNVERIFIED, **common)
    if mode == "B":
        try:
            barcode = render_barcode(number, settings, label=f"{number}")
        except ValueError:
            return Presentation("A", number, problem=CounterCode.BARCODE_UNAVAILABLE, **common)
        return Presentation("B", number, barcode=barcode, **common)
    if mode == "C":
        if keyboard is None:
            return Presentation("C", number, problem=CounterCode.KEYBOARD_UNAVAILABLE, **common)
        try:
            keyboard.type_text(number, suffix=suffix, allowed=allowed_characters(provider))
        except Exception as exc:  # any bridge failure: fall back to showing the digits
            code = getattr(exc, "wire_code", None) or getattr(exc, "code", None)
            problem = str(code) if code else CounterCode.KEYBOARD_UNAVAILABLE
            return Presentation("C", number, suffix=suffix, problem=problem, **common)
        return Presentation("C", number, typed=True, suffix=suffix, **common)
    return Presentation("A", number, **common)


def lookup(
    s: Session, provider: Provider, card: VerifiedCard, *, keyboard: Keyboard | None = None
) -> Presentation:
    """The number this card holds at `provider`, presented; CounterError otherwise.

    In PIN mode only a signed (PIN + signature) card is accepted. Codes:
    not_registered, no_link, pin_required.
    """
    if pin_required(provider) and not card.signed:
        raise CounterError(CounterCode.PIN_REQUIRED)
    try:
        found = identity.lookup(s, card.card_key, provider)
    except IdentityError as exc:
        raise CounterError(exc.code, cause=exc) from exc
    return present(
        provider,
        found.customer_number,
        keyboard=keyboard,
        terms_outdated=found.terms_outdated,
        verification=found.verification,
    )


def lookup_at(
    s: Session, provider_id: int, card: VerifiedCard, *, keyboard: Keyboard | None = None
) -> tuple[Provider, Presentation]:
    """`lookup` at the counter's provider known by its id: the provider, the card's
    binding and its link read in one query (a tap's one round trip).
    identity.UnknownProvider if there is no such provider."""

    def pin_checked(provider: Provider) -> None:
        if pin_required(provider) and not card.signed:
            raise CounterError(CounterCode.PIN_REQUIRED)

    try:
        provider, found = identity.lookup_at(s, card.card_key, provider_id, before=pin_checked)
    except IdentityError as exc:
        raise CounterError(exc.code, cause=exc) from exc
    return provider, present(
        provider,
        found.customer_number,
        keyboard=keyboard,
        terms_outdated=found.terms_outdated,
        verification=found.verification,
    )


def check_number(provider: Provider, number: str) -> str:
    """The patron's number, normalized, if the provider's rule accepts it (NumberInvalid)."""
    try:
        return validate(number, provider.number_rule)
    except NumberFormatError as exc:
        raise NumberInvalid(exc) from exc


def staff_link(
    s: Session,
    provider: Provider,
    card: VerifiedCard,
    number: str,
    accepted_terms_version: int | None,
) -> ServiceLink:
    """Link the patron's existing number, verified by staff, to the card's MyKey ID.

    Needs the citizen's PIN (a signed card for PURPOSE_LINK): the librarian checked the
    library card, the citizen proved they hold the My Number Card. The card must already
    have a MyKey ID (not_registered otherwise: the citizen registers at a kiosk or home).
    Identity refusals become CounterError with the identity code (number_invalid,
    already_linked, number_taken, terms_not_accepted, terms_outdated).
    """
    if not card.signed or card.purpose != PURPOSE_LINK:
        raise CounterError(CounterCode.PIN_REQUIRED)
    try:
        binding = s.get(CardBinding, identity.card_key_bytes(card.card_key))
        if binding is None:
            raise NotRegistered()
        return identity.link(
            s, binding.mykey_id, provider, number, accepted_terms_version, Verification.STAFF
        )
    except IdentityError as exc:
        raise CounterError(exc.code, cause=exc) from exc


def staff_verify(s: Session, provider: Provider, card: VerifiedCard, number: str) -> ServiceLink:
    """Mark the card holder's claimed number verified: staff checked the library card.

    Needs the citizen's PIN (a signed card for PURPOSE_VERIFY), as staff linking does;
    `number` is the one the tab showed (what the librarian compared the card with). A
    number another citizen holds verified is refused (number_taken); the other claims on
    the number go.
    """
    if not card.signed or card.purpose != PURPOSE_VERIFY:
        raise CounterError(CounterCode.PIN_REQUIRED)
    try:
        binding = s.get(CardBinding, identity.card_key_bytes(card.card_key))
        if binding is None:
            raise NotRegistered()
        return identity.verify(s, binding.mykey_id, provider.id, Verification.STAFF, number=number)
    except IdentityError as exc:
        raise CounterError(exc.code, cause=exc) from exc
