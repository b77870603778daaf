"""Card flows for every purpose: begin, PIN prompt, PIN completion, further steps, cancel.

Plain Python (no Flask). `FlowService` drives the one state machine (machine.py) with
the card I/O of card.py and the purpose's own work (purposes.py), and keeps each flow
in the server-side `FlowStore` under its session and terminal. Every step loads the
flow, lets the machine judge the step, and saves it back with compare-and-set, so two
requests racing on one flow (a double click, a script) cannot both move it on: one is
told BUSY. A step that changed the flow's state before its card I/O (the PIN on its
way) saves that first: a parallel request sees the PIN already sent.

What the page gets back (`Reply.to_json`): the flow's public state, the PIN prompt when
one is out (the bridge's sealing key and the command id; never the nonce), and the
purpose's result. What it never gets: the MyKey ID of a till's customer, the nonce, the
card key.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge import wire
from bridge.errors import CardError, Code, PINGuardRefused, WrongPIN
from webapp.jpki import Challenge, NonceStoreFull, VerificationError, VerifiedCard, Verifier
from webapp.ops import events
from webapp.terminals.models import BridgeDevice

from . import card as cardio
from .errors import CardFlowError, FlowCode, from_card_error, from_verification_error
from .machine import (
    Acted,
    CardRead,
    CardRemoved,
    Failed,
    Finished,
    Flow,
    FlowRuleError,
    NextCard,
    PinPrompted,
    PinRefused,
    PinSubmitted,
    PinWrong,
    State,
    Verified,
)
from .purposes import FlowContext, Outcome, Purpose, PurposeError
from .store import FlowConflict, FlowStore, FlowStoreFull, FlowStoreUnavailable

log = logging.getLogger(__name__)

# A flow record outlives its last step by this much at most (the machine's idle rule
# ends it sooner); an ended flow stays this long so the page is told why it ended.
FLOW_TTL = 20 * 60.0
# A certificate read at insertion waits this long for a flow to take it.
CARD_CACHE_TTL = 120.0
# A two-card flow keeps waiting for its second card after these (the reader, the bridge
# or the tap itself, not the card's certificate): the citizen taps again.
_WAIT_FOR_NEXT_CARD = frozenset(
    {
        FlowCode.SAME_CARD,
        FlowCode.NO_CARD,
        FlowCode.CARD_REMOVED,
        FlowCode.CARD_UNREADABLE,
        FlowCode.TIMEOUT,
        FlowCode.BRIDGE_OFFLINE,
        FlowCode.READER_MISSING,
        FlowCode.CRL_UNAVAILABLE,
    }
)
_GUARD_CODES = {
    Code.PIN_LOCKED: FlowCode.PIN_LOCKED,
    Code.PIN_LAST_TRY: FlowCode.PIN_LAST_TRY,
    Code.PIN_RETAP: FlowCode.PIN_RETAP,
}


def flow_key(session_key: str, terminal_id: int) -> str:
    """Where a session's flow at a terminal is kept."""
    return f"f:{session_key}:{terminal_id}"


def card_key_of(terminal_id: int, epoch: int) -> str:
    """Where the certificate read from a card session is kept for a moment."""
    return f"c:{terminal_id}:{epoch}"


@dataclass
class Reply:
    """A step's answer: the flow, the prompt if one is out, the purpose's result."""

    flow: Flow
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON the page gets."""
        body: dict[str, Any] = {"flow": public_state(self.flow)}
        if self.flow.prompt is not None and self.flow.state is State.PIN_PROMPTED:
            body["pin"] = self.flow.prompt.public()
        if self.result is not None:
            body["result"] = self.result
        return body


def public_state(flow: Flow) -> dict[str, Any]:
    """What the page may know of a flow."""
    return {
        "purpose": flow.purpose,
        "state": flow.state.value,
        "epoch": flow.epoch,
        "tries_left": flow.tries_left,
        "ended": None if flow.code is None else flow.code.value,
    }


class FlowService:
    """Runs card flows for registered purposes over a terminal link and a flow store."""

    def __init__(
        self,
        *,
        link: Any,
        verifier: Verifier,
        store: FlowStore,
        purposes: Mapping[str, Purpose] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.verifier = verifier
        self.store = store
        self.purposes: dict[str, Purpose] = dict(purposes or {})
        self.clock = clock
        # Set by init_app when J-LIS linkage sources are configured (cardflow/renewals.py).
        self.renewals: Callable[[Any, bytes], None] | None = None

    def catch_up(self, ctx: FlowContext, card: VerifiedCard) -> None:
        """A card bound to nobody may be a renewed one: take in J-LIS's linkage first."""
        if self.renewals is not None:
            self.renewals(ctx.s, card.card_key)

    def register(self, purpose: Purpose) -> None:
        """Make `purpose` available to `begin` (once per name)."""
        if purpose.name in self.purposes:
            raise ValueError(f"purpose {purpose.name!r} registered twice")
        self.purposes[purpose.name] = purpose

    # -- steps -----------------------------------------------------------------------

    def begin(self, ctx: FlowContext, purpose_name: str, params: Mapping[str, Any]) -> Reply:
        """A new flow for the card on the reader: read and check it, then the PIN prompt
        (or, without a PIN, the purpose's result). Replaces the session's flow there."""
        purpose = self._purpose(ctx, purpose_name)
        data = purpose.start(ctx, params)
        flow = Flow(
            purpose=purpose.name,
            terminal_id=ctx.terminal.id,
            needs_pin=purpose.needs_pin(ctx),
            idle_seconds=purpose.idle_seconds(ctx),
            touched_at=ctx.now,
            data=data,
            cards=purpose.cards,
        )
        key = flow_key(ctx.session_key, ctx.terminal.id)
        self._drop(key)
        try:
            read = self._card_on_reader(ctx, flow)
            card = self._identify(purpose, flow, read.der)
            flow.handle(CardRead(read.reader, read.epoch, card.card_key.hex()), ctx.now)
            if flow.needs_pin:
                flow.certificate = read.to_json()["der"]
                self._prompt(ctx, flow)
                result = None
            else:
                result = self._verified(ctx, purpose, flow, card)
        except (CardFlowError, PurposeError):
            self._save(key, flow, None)
            raise
        self._save(key, flow, None)
        return Reply(flow, result)

    def next_card(self, ctx: FlowContext) -> Reply:
        """A two-card purpose's second card, now on the reader: read and check it (never a
        revoked one), then its own PIN prompt. Only once the first card is verified by its
        PIN; the same card again is refused (SAME_CARD) and the flow waits for the other."""
        key, flow, version = self._load(ctx)
        try:
            flow.check(ctx.now, State.VERIFIED)
            if not flow.awaits_next_card:
                raise FlowRuleError(FlowCode.OUT_OF_ORDER, "no second card in this flow now")
            bridge_before = flow.bridge_id
            try:
                read = self._card_on_reader(ctx, flow)
                if read.epoch == flow.epoch:
                    raise CardFlowError(FlowCode.SAME_CARD, "the first card is still there")
                # Superseded is looked at only to say "the same card" rather than
                # "revoked" when the old card is tapped again; it is refused either way.
                card = cardio.identify(self.verifier, read.der, allow_superseded=True)
                if card.card_key.hex() == flow.card_key:
                    raise CardFlowError(FlowCode.SAME_CARD, "the first card again")
                if card.superseded:
                    raise CardFlowError(
                        FlowCode.REVOKED, "a renewed card's old certificate", renewed=True
                    )
            except CardFlowError as exc:
                flow.bridge_id = bridge_before
                if exc.code not in _WAIT_FOR_NEXT_CARD:
                    self._fail(flow, exc, ctx.now)
                raise
            flow.handle(NextCard(read.reader, read.epoch, card.card_key.hex()), ctx.now)
            flow.certificate = read.to_json()["der"]
            self._prompt(ctx, flow)
        finally:
            self._save(key, flow, version)
        return Reply(flow)

    def prompt(self, ctx: FlowContext) -> Reply:
        """A fresh PIN prompt for the flow's card (a new tries read and challenge)."""
        key, flow, version = self._load(ctx)
        try:
            flow.check(ctx.now, State.CARD_READ, State.PIN_PROMPTED)
            self._prompt(ctx, flow)
        finally:
            self._save(key, flow, version)
        return Reply(flow)

    def complete(
        self,
        ctx: FlowContext,
        *,
        sealed: Mapping[str, Any],
        command_id: str,
        confirm_last_try: bool,
    ) -> Reply:
        """The sealed PIN: VERIFY and signature on the card, then the purpose's work.

        A wrong PIN comes back as WRONG_PIN with a fresh prompt in the error (the
        `flow` of the exception's `reply`), unless the next try needs a re-tap.
        """
        key, flow, version = self._load(ctx)
        prompt = flow.prompt
        try:
            flow.handle(PinSubmitted(command_id, confirm_last_try), ctx.now)
        except CardFlowError:
            self._save(key, flow, version)
            raise
        assert prompt is not None  # noqa: S101 - PinSubmitted checked it
        version = self._save(key, flow, version)  # the PIN is on its way: nobody else's
        purpose = self.purposes[flow.purpose]
        outcome: Exception | None = None
        result = None
        try:
            card = self._sealed(ctx, flow, prompt, sealed, confirm_last_try)
            events.pin_accepted()  # the PIN was right and the card signed
            result = self._verified(ctx, purpose, flow, card)
        except (CardFlowError, PurposeError) as exc:
            outcome = exc
        if isinstance(outcome, CardFlowError) and outcome.code is FlowCode.WRONG_PIN:
            try:
                self._prompt(ctx, flow)  # the next attempt's prompt, fresh tries read
            except CardFlowError as next_exc:
                outcome = next_exc
            else:
                outcome = WrongPinError(flow, outcome.tries_left)
        try:
            self._save(key, flow, version)
        except CardFlowError as exc:
            if outcome is not None:
                raise
            # Verified, and the purpose's work committed (a MyKey ID made): as in `act`,
            # its answer is the truth even if the flow could not be saved after it.
            log.warning("PIN step done, but the flow not saved (%s): answered", exc.code)
        if outcome is not None:
            raise outcome
        return Reply(flow, result)

    def act(self, ctx: FlowContext, name: str, params: Mapping[str, Any]) -> Reply:
        """A further step of the purpose on a verified flow whose card is still there."""
        key, flow, version = self._load(ctx)
        purpose = self.purposes[flow.purpose]
        try:
            flow.check(ctx.now, State.VERIFIED, State.DONE)
            self._still_there(ctx, flow)
            outcome = purpose.act(ctx, name, dict(flow.data), params)
        except BaseException:
            self._save(key, flow, version)
            raise
        flow.data = outcome.data
        flow.handle(Finished() if outcome.done else Acted(), ctx.now)
        try:
            self._save(key, flow, version)
        except CardFlowError as exc:
            # The purpose's work is committed (a payment, a link): its answer is the truth
            # even when the flow could not be saved after it (Redis restarted in between,
            # or a parallel step saved first). Answering 503 here would have a till charge
            # again; a repeated step replays by the key the flow still holds, if it does.
            log.warning("flow %s done, but not saved (%s): answered all the same", name, exc.code)
        return Reply(flow, outcome.body)

    def current(self, ctx: FlowContext) -> Reply:
        """Where the session's flow at this terminal stands (the page reloaded)."""
        key, flow, version = self._load(ctx)
        try:
            flow.check(ctx.now)
            if flow.state in (State.VERIFIED, State.DONE) and not flow.awaits_next_card:
                self._still_there(ctx, flow)
        finally:
            self._save(key, flow, version)
        purpose = self.purposes[flow.purpose]
        view = purpose.view(ctx, dict(flow.data)) if flow.state is not State.ENDED else None
        return Reply(flow, view)

    def peek_purpose(self, ctx: FlowContext) -> Purpose | None:
        """The purpose of the session's flow at this terminal, if there is one."""
        found = self._get(flow_key(ctx.session_key, ctx.terminal.id))
        return None if found is None else self.purposes.get(found[0].purpose)

    def cancel(self, ctx: FlowContext) -> None:
        """End the session's flow at this terminal (nothing is written anywhere else)."""
        key = flow_key(ctx.session_key, ctx.terminal.id)
        found = self._get(key)
        if found is not None and found[0].prompt is not None:
            self._burn(found[0].prompt.nonce)
        self._drop(key)

    # -- the card, the PIN, the purpose ---------------------------------------------

    def _purpose(self, ctx: FlowContext, name: str) -> Purpose:
        purpose = self.purposes.get(name)
        if purpose is None:
            raise PurposeError("unknown_purpose", status=404, final=True)
        if ctx.terminal.kind not in purpose.terminal_kinds:
            raise PurposeError("wrong_terminal", status=403, final=True)
        return purpose

    def _identify(self, purpose: Purpose, flow: Flow, der: bytes) -> VerifiedCard:
        """Check the flow's first card; a purpose taking a renewed card's old one (and
        only its first card) accepts a superseded certificate, never another revocation."""
        superseded_ok = purpose.accepts_superseded and flow.first_card is None
        try:
            return cardio.identify(self.verifier, der, allow_superseded=superseded_ok)
        except CardFlowError as exc:
            if superseded_ok and exc.code is FlowCode.REVOKED:
                raise CardFlowError(FlowCode.OLD_CARD_REVOKED, str(exc)) from exc
            raise

    def _card_on_reader(self, ctx: FlowContext, flow: Flow) -> cardio.CertificateRead:
        """The newest card's certificate: from the read made at insertion, or read now."""
        status = cardio.terminal_status(ctx.link, ctx.terminal.id)
        if not status.online:
            raise CardFlowError(FlowCode.BRIDGE_OFFLINE)
        if status.card is None:
            raise CardFlowError(FlowCode.NO_CARD)
        flow.bridge_id = status.card.bridge_id
        cached = self.cached_certificate(ctx.terminal.id, status.card.epoch)
        if cached is not None:
            return cached
        read = cardio.read_certificate(
            ctx.link, ctx.terminal.id, reader=status.card.reader, epoch=status.card.epoch
        )
        self.cache_certificate(ctx.terminal.id, read)
        return read

    def _prompt(self, ctx: FlowContext, flow: Flow) -> None:
        """Read the tries (spending none) and issue the challenge: the machine decides."""
        assert flow.reader is not None and flow.epoch is not None  # noqa: S101 - CARD_READ
        old = flow.prompt
        try:
            tries, armed = cardio.read_tries(ctx.link, ctx.terminal.id, flow.reader, flow.epoch)
            seal_key = self._seal_key(ctx, flow.bridge_id)
            try:
                challenge = self.verifier.challenges.issue(flow.purpose, str(ctx.terminal.id))
            except NonceStoreFull as exc:
                raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, str(exc)) from exc
            except VerificationError as exc:  # the nonce store is down
                raise from_verification_error(exc) from exc
        except CardFlowError as exc:
            self._fail(flow, exc, ctx.now)
            raise
        assert flow.bridge_id is not None  # noqa: S101 - _seal_key checked it
        try:
            flow.handle(
                PinPrompted(tries, armed, wire.new_id(), flow.bridge_id, seal_key, challenge.nonce),
                ctx.now,
            )
        except CardFlowError:
            self._burn(challenge.nonce)
            raise
        finally:
            if old is not None:
                self._burn(old.nonce)

    def _seal_key(self, ctx: FlowContext, bridge_id: str | None) -> str:
        device = None if bridge_id is None else ctx.s.get(BridgeDevice, bridge_id)
        if device is None or device.terminal_id != ctx.terminal.id or device.revoked_at:
            raise CardFlowError(FlowCode.BRIDGE_OFFLINE, "no active bridge for this terminal")
        return str(device.seal_public_key)

    def _sealed(
        self,
        ctx: FlowContext,
        flow: Flow,
        prompt: Any,
        sealed: Mapping[str, Any],
        confirm_last_try: bool,
    ) -> VerifiedCard:
        """The sealed PIN and signature through the bridge, then the server's check."""
        assert flow.reader is not None and flow.epoch is not None  # noqa: S101 - PIN_SENT
        challenge = Challenge(prompt.nonce, flow.purpose, str(ctx.terminal.id), datetime.now(UTC))
        verified = False
        try:
            signature = cardio.sealed_sign(
                ctx.link,
                ctx.terminal.id,
                reader=flow.reader,
                epoch=flow.epoch,
                sealed=sealed,
                command_id=prompt.command_id,
                digest_info=self.verifier.digest_info_to_sign(challenge),
                confirm_last_try=confirm_last_try,
            )
            der = cardio.CertificateRead.from_json(
                {"der": flow.certificate or "", "reader": flow.reader, "epoch": flow.epoch}
            ).der
            superseded_ok = self.purposes[flow.purpose].accepts_superseded and (
                flow.cards == 2 and flow.first_card is None
            )
            try:
                card = self.verifier.verify_authentication(
                    der,
                    signature,
                    prompt.nonce,
                    expected_purpose=flow.purpose,
                    expected_terminal=str(ctx.terminal.id),
                    allow_superseded=superseded_ok,
                )
            except VerificationError as exc:
                error = from_verification_error(exc)
                if superseded_ok and error.code is FlowCode.REVOKED:
                    error = CardFlowError(FlowCode.OLD_CARD_REVOKED, str(exc))
                raise error from exc
            verified = True
        except WrongPIN as exc:
            flow.handle(PinWrong(exc.tries_left), ctx.now)
            raise CardFlowError(
                FlowCode.PIN_LOCKED if exc.tries_left == 0 else FlowCode.WRONG_PIN,
                tries_left=exc.tries_left,
            ) from exc
        except PINGuardRefused as exc:
            code = _GUARD_CODES.get(exc.code, FlowCode.AUTH_FAILED)
            flow.handle(PinRefused(code, exc.tries_left), ctx.now)
            raise CardFlowError(code, str(exc), tries_left=exc.tries_left) from exc
        except CardError as exc:
            error = from_card_error(exc)
            if exc.code == Code.REFUSED:  # the envelope did not open: not this prompt's
                error = CardFlowError(FlowCode.AUTH_FAILED, str(exc))
            self._fail(flow, error, ctx.now)
            raise error from exc
        except CardFlowError as exc:
            self._fail(flow, exc, ctx.now)
            raise
        finally:
            if not verified:
                self._burn(prompt.nonce)
        flow.handle(Verified(card.card_key.hex(), signed=True), ctx.now)
        return card

    def _verified(
        self, ctx: FlowContext, purpose: Purpose, flow: Flow, card: VerifiedCard
    ) -> dict[str, Any]:
        """The purpose's work for a verified card; the machine follows what it says."""
        if flow.state is State.CARD_READ:
            flow.handle(Verified(card.card_key.hex(), signed=False), ctx.now)
        self.catch_up(ctx, card)
        try:
            outcome: Outcome = purpose.verified(ctx, card, dict(flow.data))
        except PurposeError as exc:
            if exc.final:
                flow.handle(Failed(FlowCode.CANCELLED), ctx.now)
            raise
        flow.data = outcome.data
        if outcome.done:
            flow.handle(Finished(), ctx.now)
        return outcome.body

    def _still_there(self, ctx: FlowContext, flow: Flow) -> None:
        """End the flow if its card has left the reader (CARD_REMOVED).

        A bridge out of reach says nothing about the card: its worker was killed, or
        Redis is restarting, and the bridge is back within seconds with the same card
        session. The flow stays, and the step is answered "try again shortly" (not final:
        a till's confirm sent again pays once)."""
        assert flow.epoch is not None  # noqa: S101 - verified flows have a card
        status = cardio.terminal_status(ctx.link, ctx.terminal.id)
        if not status.online:
            raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, "the bridge is out of reach")
        if status.card is None or status.card.epoch != flow.epoch:
            flow.handle(CardRemoved(flow.epoch), ctx.now)
            raise CardFlowError(FlowCode.CARD_REMOVED)

    def _fail(self, flow: Flow, exc: CardFlowError, now: float) -> None:
        """Tell the machine a step failed outside it (the card left, the bridge...)."""
        if exc.code is FlowCode.CARD_REMOVED:
            flow.handle(CardRemoved(flow.epoch), now)
        else:
            flow.handle(Failed(exc.code, exc.tries_left), now)

    # -- the store -------------------------------------------------------------------

    def _get(self, key: str) -> tuple[Flow, int] | None:
        try:
            found = self.store.get(key)
        except FlowStoreUnavailable as exc:
            raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, str(exc)) from exc
        if found is None:
            return None
        try:
            return Flow.from_json(found.value), found.version
        except (KeyError, ValueError, TypeError):
            return None

    def _load(self, ctx: FlowContext) -> tuple[str, Flow, int]:
        key = flow_key(ctx.session_key, ctx.terminal.id)
        found = self._get(key)
        if found is None:
            raise CardFlowError(FlowCode.SESSION_ENDED, "no card flow here")
        flow, version = found
        if flow.terminal_id != ctx.terminal.id:
            raise CardFlowError(FlowCode.SESSION_ENDED, "another terminal's flow")
        return key, flow, version

    def _save(self, key: str, flow: Flow, version: int | None) -> int:
        try:
            return self.store.put(key, flow.to_json(), FLOW_TTL, expect=version)
        except FlowConflict as exc:
            raise CardFlowError(FlowCode.BUSY, "another request moved this flow on") from exc
        except (FlowStoreFull, FlowStoreUnavailable) as exc:
            raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, str(exc)) from exc

    def _drop(self, key: str) -> None:
        try:
            self.store.delete(key)
        except FlowStoreUnavailable as exc:
            raise CardFlowError(FlowCode.SERVICE_UNAVAILABLE, str(exc)) from exc

    def _burn(self, nonce: str) -> None:
        """Drop a challenge that can no longer be answered (single use either way)."""
        with contextlib.suppress(VerificationError):
            self.verifier.challenges.take(nonce)

    # -- the card read at insertion ------------------------------------------------

    def cache_certificate(self, terminal_id: int, read: cardio.CertificateRead) -> None:
        """Keep a certificate read for a moment, for the flow that will want it."""
        with contextlib.suppress(FlowStoreUnavailable, FlowStoreFull, ValueError):
            self.store.put(card_key_of(terminal_id, read.epoch), read.to_json(), CARD_CACHE_TTL)

    def cached_certificate(self, terminal_id: int, epoch: int) -> cardio.CertificateRead | None:
        """The certificate read from card session `epoch`, if it was read at insertion."""
        try:
            found = self.store.get(card_key_of(terminal_id, epoch))
            return None if found is None else cardio.CertificateRead.from_json(found.value)
        except (FlowStoreUnavailable, KeyError, ValueError, TypeError):
            return None

    def forget_card(self, terminal_id: int, epoch: int) -> None:
        """The card left: its certificate is not kept a moment longer."""
        with contextlib.suppress(FlowStoreUnavailable):
            self.store.delete(card_key_of(terminal_id, epoch))


class WrongPinError(CardFlowError):
    """A wrong PIN; the flow holds the next prompt (`reply`), unless it ended."""

    def __init__(self, flow: Flow, tries_left: int | None) -> None:
        super().__init__(FlowCode.WRONG_PIN, tries_left=tries_left)
        self.reply = Reply(flow)
