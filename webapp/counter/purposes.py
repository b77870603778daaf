"""The counter's two purposes of the one card flow: look a number up, and link one.

- `lookup` (利用者番号の照会): the card's number at this library, presented in the
  library's output mode (A digits, B barcode, C typed by the bridge). With the PIN when
  the library asks for it; without, the platform runs it by itself as soon as the card
  is read (push.py) and the tab only shows what it is sent.
- `link` (職員による利用者番号の登録): the librarian has checked the patron's library
  card and types its number; the citizen's PIN confirms they hold the My Number Card.
- `verify` (利用者カードの確認): the citizen linked the number themselves (a claim, shown
  with a "check the library card once" notice and never typed); the librarian has
  compared the library card with it, and the citizen's PIN confirms the My Number Card.

Both answer with the presentation (`counter.services.Presentation.as_json()`); a refusal
is a PurposeError with the counter's code (not_registered, no_link, number_taken...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from ..cardflow.purposes import BasePurpose, FlowContext, Outcome, PurposeError
from ..identity.services import UnknownProvider
from ..jpki import VerifiedCard
from ..providers.models import Provider
from ..terminals.models import TerminalKind
from . import patron_status, services
from .services import PURPOSE_LINK, PURPOSE_LOOKUP, PURPOSE_VERIFY, CounterError

KEYBOARD_TIMEOUT = 5.0
# A counter flow waits for the card holder's PIN this long (a queue at the desk).
IDLE_SECONDS = 120.0


class BridgeKeyboard:
    """Keyboard output through the terminal's bridge (counter.services.Keyboard)."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    def type_text(self, text: str, *, suffix: str = "enter", allowed: str = "0123456789") -> None:
        """Type `text` then the suffix into the library system's window."""
        self.ctx.link.type_text(
            self.ctx.terminal.id, text, suffix=suffix, allowed=allowed, timeout=KEYBOARD_TIMEOUT
        )


def provider_of(ctx: FlowContext) -> Provider:
    """The counter's library."""
    provider = ctx.s.get(Provider, ctx.terminal.provider_id)
    if provider is None:
        raise PurposeError("wrong_terminal", status=403, final=True)
    return provider


def _refusal(exc: CounterError) -> PurposeError:
    return PurposeError(exc.code, final=True, extra={"offer_link": exc.code == "no_link"})


def _presented(
    ctx: FlowContext, presentation: services.Presentation, *, linked: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"presentation": presentation.as_json(), "linked": linked}
    if presentation.verified and ctx.terminal.provider_id is not None:
        # The library system's word on the patron follows on the events channel.
        body["patron_status"] = patron_status.announce(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            ctx.terminal.id,
            ctx.terminal.provider_id,
            presentation.number,
        )
    if presentation.problem:
        body["notice"] = {"code": str(presentation.problem), "final": False}
    return body


class LookupPurpose(BasePurpose):
    """The card's number at this library (with the PIN where the library asks for it)."""

    name = PURPOSE_LOOKUP
    terminal_kinds = frozenset({TerminalKind.COUNTER})
    idle = IDLE_SECONDS

    def needs_pin(self, ctx: FlowContext) -> bool:
        """The library's setting."""
        return services.pin_required(provider_of(ctx))

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """Look the number up and present it (typed by the bridge in mode C)."""
        if ctx.terminal.provider_id is None:
            raise PurposeError("wrong_terminal", status=403, final=True)
        try:
            # The provider, the binding and the link in one read.
            _, presentation = services.lookup_at(
                ctx.s, ctx.terminal.provider_id, card, keyboard=BridgeKeyboard(ctx)
            )
        except UnknownProvider:
            raise PurposeError("wrong_terminal", status=403, final=True) from None
        except CounterError as exc:
            raise _refusal(exc) from exc
        return Outcome(_presented(ctx, presentation), data, done=True)


class LinkPurpose(BasePurpose):
    """Staff-assisted linking: the number the librarian checked, the citizen's PIN."""

    name = PURPOSE_LINK
    terminal_kinds = frozenset({TerminalKind.COUNTER})
    idle = IDLE_SECONDS

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """The library card's number (checked by the library's rule) and the terms."""
        provider = provider_of(ctx)
        if params.get("terms_accepted") is not True:
            raise PurposeError("terms_not_accepted")
        # NumberInvalid (an IdentityError) says why, in the page's language.
        number = services.check_number(provider, str(params.get("number") or "")[:64])
        return {"number": number, "terms_version": provider.terms_version}

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """Link, then present the number as a lookup would."""
        provider = provider_of(ctx)
        try:
            services.staff_link(ctx.s, provider, card, data["number"], data.get("terms_version"))
            presentation = services.lookup(ctx.s, provider, card, keyboard=BridgeKeyboard(ctx))
        except CounterError as exc:
            raise _refusal(exc) from exc
        return Outcome(_presented(ctx, presentation, linked=True), {}, done=True)


class VerifyPurpose(BasePurpose):
    """Staff checked the library card against a claimed number: the PIN makes it verified."""

    name = PURPOSE_VERIFY
    terminal_kinds = frozenset({TerminalKind.COUNTER})
    idle = IDLE_SECONDS

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """The number the tab showed (the one the librarian compared the card with)."""
        number = services.check_number(provider_of(ctx), str(params.get("number") or "")[:64])
        return {"number": number}

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """Mark the card holder's claim verified, then present the number as usual."""
        provider = provider_of(ctx)
        try:
            services.staff_verify(ctx.s, provider, card, data["number"])
            presentation = services.lookup(ctx.s, provider, card, keyboard=BridgeKeyboard(ctx))
        except CounterError as exc:
            raise _refusal(exc) from exc
        body = _presented(ctx, presentation)
        body["verified_now"] = True
        return Outcome(body, {}, done=True)
