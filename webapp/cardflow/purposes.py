"""What a card flow is for: the small part each terminal supplies.

The state machine (machine.py) and the flow service (flows.py) are the same for every
terminal; a `Purpose` says only what differs: on which terminals it runs, whether it
needs the PIN, what it takes before the card (an amount, a number to link), what it
does once the card is verified, and which further steps it offers while the card
stays on the reader. Purposes live in their domains (webapp/counter/purposes.py,
webapp/kiosk/purposes.py, webapp/points/till.py) and register in `init_app`.

The contract, for every purpose:

- `start(ctx, params)` validates what the page sends before the card (never trusted
  later: the result is kept server side in `flow.data`); a refusal is a `PurposeError`.
- `verified(ctx, card, data)` runs once, right after the machine has accepted the
  card (read only, or PIN + signature when `needs_pin`); it returns an `Outcome`.
- `act(ctx, name, data, params)` runs one further step (a link, a payment's
  confirmation) on a verified flow whose card is still on the reader; an unknown name
  is a PurposeError `unknown_step`.
- `view(ctx, data)` is what the page gets back when it asks where the flow stands
  (after a reload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from webapp.jpki import VerifiedCard
from webapp.terminals.interfaces import TerminalLink
from webapp.terminals.models import Terminal


@dataclass(frozen=True)
class FlowContext:
    """Where a step runs: the database session, the bound terminal, the settings."""

    s: Session
    terminal: Terminal
    session_key: str  # the server-side session's key: flows are kept per session+terminal
    config: Mapping[str, Any]
    link: TerminalLink
    now: float


@dataclass
class Outcome:
    """What a purpose step gives back: the page's result, the purpose's data, done or not."""

    body: dict[str, Any]
    data: dict[str, Any]
    done: bool = False


class PurposeError(Exception):
    """A purpose refused (an invalid amount, a number taken...): `code` words it.

    `final`: the flow cannot go on (the page starts again); `extra` goes into the
    error body (e.g. `offer_link` at the counter).
    """

    def __init__(
        self,
        code: str,
        *,
        status: int = 422,
        final: bool = False,
        detail: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = str(code)
        self.status = status
        self.final = final
        self.detail = detail
        self.extra = dict(extra or {})


class Purpose(Protocol):
    """One use of a card at a terminal (see the module docstring for the contract)."""

    name: str
    terminal_kinds: frozenset[str]
    # Actions that only read (answered to GET as well as POST).
    reads: frozenset[str]
    # Cards taken one after the other (2: the renewal's old card, then the new one).
    cards: int
    # The first card may be a renewed card's old one (CRL reason superseded): the
    # renewal's two-card step only, never any other purpose.
    accepts_superseded: bool

    def needs_pin(self, ctx: FlowContext) -> bool:
        """Whether the card must be verified by its PIN (and a signature)."""
        ...

    def idle_seconds(self, ctx: FlowContext) -> float:
        """How long the flow may sit untouched before it ends."""
        ...

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """The purpose's data from the page's input, validated (PurposeError)."""
        ...

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """What the purpose does once the card is verified."""
        ...

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """A further step on a verified flow."""
        ...

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """Where the purpose stands, for a page that reloads."""
        ...


class BasePurpose:
    """The defaults of a purpose: the PIN always, a given idle time, nothing taken before
    the card, no further steps, nothing to show again. Subclasses set `name`,
    `terminal_kinds` and `idle` and override what differs."""

    name = ""
    terminal_kinds: frozenset[str] = frozenset()
    reads: frozenset[str] = frozenset()
    idle = 120.0
    cards = 1
    accepts_superseded = False

    def needs_pin(self, ctx: FlowContext) -> bool:
        """Verified by the card's PIN and a signature."""
        return True

    def idle_seconds(self, ctx: FlowContext) -> float:
        """The purpose's idle time."""
        return self.idle

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """Nothing to take before the card."""
        return {}

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """Subclasses say what the verified card is for."""
        raise NotImplementedError

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """No further steps."""
        raise PurposeError("unknown_step", status=404)

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """Nothing kept to show again."""
        return {}
