"""One card flow as a state machine: every rule between a card on a reader and the
purpose it serves, in one place.

Sans-IO in the manner of h11: no bridge, bus, database or Flask here. The caller does
the card I/O and tells the machine what happened (`flow.handle(event, now)`); the
machine moves to its next state, or refuses with `FlowRuleError` when the step is not
allowed now (whose fault: the caller's, like h11's LocalProtocolError). Every purpose
(the counter's lookup and link, the kiosk, the home terminal, the till's payment) runs
through this one machine; what differs is whether the purpose needs a PIN and what it
does once the card is verified, which the caller keeps in `flow.data`.

States (docs/cardflow.md has the table):

    WAITING ──CardRead──► CARD_READ ──PinPrompted──► PIN_PROMPTED ──PinSubmitted──► PIN_SENT
                              │  ▲                        │                           │
                              │  └────────PinWrong────────┼───────────────────────────┤
                              │                           │                           │
                              └──Verified(no PIN)──► VERIFIED ◄──────Verified─────────┘
                                                          │
                                                  Finished / Acted
                                                          ▼
                                                        DONE
    any state ──CardRemoved / Failed / Cancelled / idle──► ENDED (with a FlowCode)

The rules that make it trustworthy, each enforced here whatever a page sends:

- A flow serves one card session (the reader's epoch): the card read first is the only
  card it ever talks to; an event of another epoch is refused, its removal ends it.
- A PIN prompt is issued only on a fresh tries read: never at 0 tries (the card is
  locked: the flow ends); at 1 try only when the bridge reports the last try armed (it
  saw the card leave the reader and come back after the tries were read); otherwise
  the flow ends with PIN_RETAP ("take your card off the reader and tap it again").
- One prompt, one PIN: submitting consumes the prompt (PIN_SENT); a wrong PIN ends
  the prompt, and another attempt needs a new prompt with a fresh tries read. The
  last try needs the citizen's explicit confirmation as well (never sufficient alone:
  the bridge's guard is what no script can pass).
- A verification must come from the card that was read (same card key), signed by a
  PIN when the purpose needs one.
- A flow untouched for its idle time ends (SESSION_ENDED); at most MAX_PROMPTS
  prompts per flow.
- A purpose of two cards (`cards=2`: the renewal's old card, then the new one) moves on
  to its second card only from VERIFIED by the first card's PIN (`NextCard`), once, and
  never to the same card; the second card starts afresh (its own card session, tries
  read and prompts) and the first card's key stays in `first_card`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import CardFlowError, FlowCode

# Prompts per flow: three tries, a re-prompt each, and a spare for a reloaded page.
MAX_PROMPTS = 8


class State(enum.StrEnum):
    """Where a flow stands."""

    WAITING = "waiting"  # begun for a purpose; the card not read yet
    CARD_READ = "card_read"  # certificate read and accepted; the card session is pinned
    PIN_PROMPTED = "pin_prompted"  # a prompt (fresh tries read, challenge) is out
    PIN_SENT = "pin_sent"  # one sealed PIN is on its way to the card
    VERIFIED = "verified"  # the server knows the card (signed by the PIN if needed)
    DONE = "done"  # the purpose's work is finished (number shown, paid)
    ENDED = "ended"  # removed, failed, cancelled or idle: nothing more


LIVE = frozenset(State) - {State.ENDED}


class FlowRuleError(CardFlowError):
    """The step is not allowed in the flow's state (the caller's fault)."""


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardRead:
    """The certificate of the card in `reader` (card session `epoch`) was accepted."""

    reader: str
    epoch: int
    card_key: str  # hex of the keyed hash (webapp.jpki.cardkey), never a serial


@dataclass(frozen=True, slots=True)
class PinPrompted:
    """Tries were read afresh and a challenge issued for the next PIN entry."""

    tries_left: int | None  # None: the card says the PIN is already verified
    last_try_armed: bool  # the bridge's word: a VERIFY at one try would be allowed
    command_id: str  # the id the browser seals the PIN for (with the bridge id)
    bridge_id: str
    seal_key: str  # the bridge's P-256 public key, base64url
    nonce: str  # the challenge the card signs


@dataclass(frozen=True, slots=True)
class PinSubmitted:
    """A sealed PIN for the prompt `command_id` is about to go to the bridge."""

    command_id: str
    confirm_last_try: bool


@dataclass(frozen=True, slots=True)
class PinWrong:
    """The card refused the PIN; `tries_left` remain."""

    tries_left: int


@dataclass(frozen=True, slots=True)
class PinRefused:
    """The bridge's guard sent no VERIFY (PIN_RETAP, PIN_LAST_TRY or PIN_LOCKED)."""

    code: FlowCode
    tries_left: int | None


@dataclass(frozen=True, slots=True)
class Verified:
    """The card was verified: by its PIN and a signature (`signed`), or read only."""

    card_key: str
    signed: bool


@dataclass(frozen=True, slots=True)
class NextCard:
    """A two-card purpose's second card (`card_key`, card session `epoch`) was read and
    accepted, after the first card was verified by its PIN."""

    reader: str
    epoch: int
    card_key: str


@dataclass(frozen=True, slots=True)
class Acted:
    """The purpose did a step of its own after verification (a link, a re-roll)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """The purpose's work is done (the number shown, the payment made)."""


@dataclass(frozen=True, slots=True)
class CardRemoved:
    """The card of `epoch` left the reader (or another card session is on it now)."""

    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """Something outside the machine failed; `code` says what."""

    code: FlowCode
    tries_left: int | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The page (or staff) ended the flow."""


Event = (
    CardRead
    | PinPrompted
    | PinSubmitted
    | PinWrong
    | PinRefused
    | Verified
    | NextCard
    | Acted
    | Finished
    | CardRemoved
    | Failed
    | Cancelled
)

# Outcomes after which the flow cannot go on with this card (codes of ended flows).
_ENDS_FLOW = frozenset(
    {
        FlowCode.PIN_LOCKED,
        FlowCode.PIN_RETAP,
        FlowCode.CARD_REMOVED,
        FlowCode.SESSION_ENDED,
        FlowCode.NOT_MY_NUMBER_CARD,
        FlowCode.UNTRUSTED,
        FlowCode.EXPIRED,
        FlowCode.NOT_YET_VALID,
        FlowCode.REVOKED,
        FlowCode.NO_CARD,
        FlowCode.BRIDGE_OFFLINE,
        FlowCode.READER_MISSING,
        FlowCode.AUTH_FAILED,
        FlowCode.NOT_REGISTERED,
        FlowCode.CANCELLED,
        FlowCode.OLD_CARD_REVOKED,
    }
)


@dataclass(slots=True)
class Prompt:
    """The prompt that is out: what the browser seals for, and the challenge."""

    command_id: str
    bridge_id: str
    seal_key: str
    nonce: str
    tries_left: int | None
    last_try: bool

    def public(self) -> dict[str, Any]:
        """What the PIN pad needs (the nonce stays here: the server signs for it)."""
        return {
            "bridge_id": self.bridge_id,
            "seal_public_key": self.seal_key,
            "command_id": self.command_id,
            "tries_left": self.tries_left,
            "last_try": self.last_try,
        }


@dataclass
class Flow:
    """One card flow: its purpose, its state and what the server keeps for it.

    `data` belongs to the purpose (the number to link, the amount to pay, the MyKey ID
    once known): it stays on the server, like everything else here.
    """

    purpose: str
    terminal_id: int
    needs_pin: bool
    idle_seconds: float
    touched_at: float
    state: State = State.WAITING
    reader: str | None = None
    epoch: int | None = None
    card_key: str | None = None
    signed: bool = False
    tries_left: int | None = None
    prompt: Prompt | None = None
    prompts: int = 0
    code: FlowCode | None = None  # why it ended
    data: dict[str, Any] = field(default_factory=dict)
    cards: int = 1  # how many cards the purpose takes, one after the other (1 or 2)
    first_card: str | None = None  # a two-card flow's first card, once the second is read
    # Kept for the step after the machine, not read by it: the bridge serving the card
    # (whose key the PIN is sealed to) and the card's certificate (public data, base64),
    # kept to check the signature without reading the card again; dropped once verified.
    bridge_id: str | None = None
    certificate: str | None = None

    # -- the one entry point ---------------------------------------------------------

    def handle(self, event: Event, now: float) -> None:
        """Apply `event` at time `now`, or raise (FlowRuleError, or the flow's end).

        An idle flow ends before anything else happens; an ended flow refuses every
        event with the reason it ended.
        """
        if self.state is State.ENDED:
            if isinstance(event, Cancelled | CardRemoved | Failed):
                return
            raise self._ended_error()
        if now - self.touched_at > self.idle_seconds and not isinstance(event, Cancelled):
            self._end(FlowCode.SESSION_ENDED)
            raise self._ended_error()
        handler = _HANDLERS[type(event)]
        handler(self, event)
        self.touched_at = now

    def check(self, now: float, *states: State) -> None:
        """Refuse unless the flow is live, not idle, and in one of `states` (if given)."""
        if self.state is State.ENDED:
            raise self._ended_error()
        if now - self.touched_at > self.idle_seconds:
            self._end(FlowCode.SESSION_ENDED)
            raise self._ended_error()
        if states and self.state not in states:
            raise FlowRuleError(FlowCode.OUT_OF_ORDER, f"not in {self.state.value}")

    @property
    def ended(self) -> bool:
        """True once nothing more can happen."""
        return self.state is State.ENDED

    @property
    def awaits_next_card(self) -> bool:
        """A two-card flow whose first card is verified and whose second is not read yet
        (the first card may leave the reader: that is the point)."""
        return self.cards == 2 and self.first_card is None and self.state is State.VERIFIED

    # -- transitions -----------------------------------------------------------------

    def _card_read(self, e: CardRead) -> None:
        self._expect(State.WAITING)
        self.reader, self.epoch, self.card_key = e.reader, e.epoch, e.card_key
        self.state = State.CARD_READ

    def _pin_prompted(self, e: PinPrompted) -> None:
        self._expect(State.CARD_READ, State.PIN_PROMPTED)
        if not self.needs_pin:
            raise FlowRuleError(FlowCode.OUT_OF_ORDER, "this purpose takes no PIN")
        if self.prompts >= MAX_PROMPTS:
            self._end(FlowCode.SESSION_ENDED)
            raise FlowRuleError(FlowCode.SESSION_ENDED, "too many prompts")
        self.prompts += 1
        self.tries_left = e.tries_left
        self.prompt = None
        if e.tries_left == 0:
            self._end(FlowCode.PIN_LOCKED)
            raise self._ended_error()
        if e.tries_left == 1 and not e.last_try_armed:
            self._end(FlowCode.PIN_RETAP)
            raise self._ended_error()
        self.prompt = Prompt(
            e.command_id, e.bridge_id, e.seal_key, e.nonce, e.tries_left, e.tries_left == 1
        )
        self.state = State.PIN_PROMPTED

    def _pin_submitted(self, e: PinSubmitted) -> None:
        if self.state is State.PIN_SENT:
            raise FlowRuleError(FlowCode.BUSY, "a PIN is already on its way")
        self._expect(State.PIN_PROMPTED)
        prompt = self.prompt
        if prompt is None or e.command_id != prompt.command_id:
            raise FlowRuleError(FlowCode.FLOW_EXPIRED, "not the prompt that is out")
        if prompt.last_try and not e.confirm_last_try:
            # The prompt stays: the citizen may still confirm, or stop here.
            raise FlowRuleError(FlowCode.PIN_LAST_TRY, tries_left=1)
        self.state = State.PIN_SENT

    def _pin_wrong(self, e: PinWrong) -> None:
        self._expect(State.PIN_SENT)
        self.prompt = None
        self.tries_left = e.tries_left
        if e.tries_left == 0:
            self._end(FlowCode.PIN_LOCKED)
            return
        self.state = State.CARD_READ  # a new prompt, with a fresh tries read, is needed

    def _pin_refused(self, e: PinRefused) -> None:
        self._expect(State.PIN_SENT)
        self.prompt = None
        self.tries_left = e.tries_left
        if e.code in _ENDS_FLOW:
            self._end(e.code)
        else:
            self.state = State.CARD_READ

    def _verified(self, e: Verified) -> None:
        if e.signed:
            self._expect(State.PIN_SENT)
        else:
            self._expect(State.CARD_READ)
            if self.needs_pin:
                raise FlowRuleError(FlowCode.OUT_OF_ORDER, "this purpose needs the PIN")
        if e.card_key != self.card_key:
            # Another card answered the card session we pinned: nothing it says counts.
            self._end(FlowCode.AUTH_FAILED)
            raise self._ended_error()
        self.prompt = None
        self.certificate = None
        self.signed = e.signed
        if e.signed:
            self.tries_left = None  # a right PIN resets the counter on the card
        self.state = State.VERIFIED

    def _next_card(self, e: NextCard) -> None:
        self._expect(State.VERIFIED)
        if not self.awaits_next_card or not self.signed or self.card_key is None:
            raise FlowRuleError(FlowCode.OUT_OF_ORDER, "no second card in this flow now")
        if e.card_key == self.card_key:
            # The same card again (taken off and tapped back): the flow waits for the other.
            raise FlowRuleError(FlowCode.SAME_CARD, "the second card is the first one")
        self.first_card = self.card_key
        self.reader, self.epoch, self.card_key = e.reader, e.epoch, e.card_key
        self.signed = False
        self.tries_left = None
        self.prompt = None
        self.prompts = 0
        self.state = State.CARD_READ

    def _acted(self, e: Acted) -> None:
        self._expect(State.VERIFIED, State.DONE)

    def _finished(self, e: Finished) -> None:
        self._expect(State.VERIFIED, State.DONE)
        self.state = State.DONE

    def _card_removed(self, e: CardRemoved) -> None:
        if e.epoch is not None and self.epoch is not None and e.epoch != self.epoch:
            return  # another card session's removal: not ours
        if self.awaits_next_card:
            return  # the first card of two leaves the reader for the second
        self._end(FlowCode.CARD_REMOVED)

    def _failed(self, e: Failed) -> None:
        if e.tries_left is not None:
            self.tries_left = e.tries_left
        if self.state is State.PIN_SENT or self.state is State.PIN_PROMPTED:
            self.prompt = None  # the nonce and command id are spent either way
            if e.code not in _ENDS_FLOW:
                self.state = State.CARD_READ
                return
        if e.code in _ENDS_FLOW or self.state is State.WAITING:
            self._end(e.code)

    def _cancelled(self, e: Cancelled) -> None:
        self._end(FlowCode.CANCELLED)

    # -- helpers ---------------------------------------------------------------------

    def _expect(self, *states: State) -> None:
        if self.state not in states:
            raise FlowRuleError(FlowCode.OUT_OF_ORDER, f"not in {self.state.value}")

    def _end(self, code: FlowCode) -> None:
        self.state = State.ENDED
        self.code = code
        self.prompt = None
        self.certificate = None

    def _ended_error(self) -> CardFlowError:
        code = self.code or FlowCode.SESSION_ENDED
        tries = self.tries_left if code in (FlowCode.PIN_LOCKED, FlowCode.PIN_RETAP) else None
        return CardFlowError(code, "the flow has ended", tries_left=tries)

    # -- kept between requests -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The flow as JSON-ready data (for the server-side flow store)."""
        return {
            "purpose": self.purpose,
            "terminal_id": self.terminal_id,
            "needs_pin": self.needs_pin,
            "idle_seconds": self.idle_seconds,
            "touched_at": self.touched_at,
            "state": self.state.value,
            "reader": self.reader,
            "epoch": self.epoch,
            "card_key": self.card_key,
            "signed": self.signed,
            "tries_left": self.tries_left,
            "prompt": None
            if self.prompt is None
            else {
                "command_id": self.prompt.command_id,
                "bridge_id": self.prompt.bridge_id,
                "seal_key": self.prompt.seal_key,
                "nonce": self.prompt.nonce,
                "tries_left": self.prompt.tries_left,
                "last_try": self.prompt.last_try,
            },
            "prompts": self.prompts,
            "code": None if self.code is None else self.code.value,
            "data": self.data,
            "cards": self.cards,
            "first_card": self.first_card,
            "bridge_id": self.bridge_id,
            "certificate": self.certificate,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Flow:
        """The flow `to_json` gave (ValueError/KeyError/TypeError if it is not one)."""
        prompt = obj.get("prompt")
        return cls(
            purpose=str(obj["purpose"]),
            terminal_id=int(obj["terminal_id"]),
            needs_pin=bool(obj["needs_pin"]),
            idle_seconds=float(obj["idle_seconds"]),
            touched_at=float(obj["touched_at"]),
            state=State(obj["state"]),
            reader=obj.get("reader"),
            epoch=obj.get("epoch"),
            card_key=obj.get("card_key"),
            signed=bool(obj.get("signed")),
            tries_left=obj.get("tries_left"),
            prompt=None if prompt is None else Prompt(**prompt),
            prompts=int(obj.get("prompts", 0)),
            code=None if obj.get("code") is None else FlowCode(obj["code"]),
            data=dict(obj.get("data") or {}),
            cards=int(obj.get("cards", 1)),
            first_card=obj.get("first_card"),
            bridge_id=obj.get("bridge_id"),
            certificate=obj.get("certificate"),
        )


_HANDLERS: dict[type, Any] = {
    CardRead: Flow._card_read,
    PinPrompted: Flow._pin_prompted,
    PinSubmitted: Flow._pin_submitted,
    PinWrong: Flow._pin_wrong,
    PinRefused: Flow._pin_refused,
    Verified: Flow._verified,
    NextCard: Flow._next_card,
    Acted: Flow._acted,
    Finished: Flow._finished,
    CardRemoved: Flow._card_removed,
    Failed: Flow._failed,
    Cancelled: Flow._cancelled,
}
