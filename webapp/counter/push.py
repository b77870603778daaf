"""The number pushed, not fetched: a counter in no-PIN mode answers a tap by itself.

When a card arrives at a counter's reader, the worker holding that bridge's connection
(`terminals.registry`) tells `CounterPush.on_card`. If a counter tab is listening (a
presence kept by /ws/terminal and the status poll) and the library asks for no PIN at
lookup, the platform reads the certificate through the bridge at once, checks it, runs
the `lookup` purpose through the one state machine (card read -> verified -> done), and
publishes the number (or the reason there is none) on the terminal's events channel:
every tab of that counter shows it as it arrives, and makes no request of its own. If
the library asks for the PIN, the event says so (`needs_pin`) and the tab runs the PIN
flow (/flow): the page never decides the mode, the library's setting does, at the tap.

Once per card session: a claim in the flow store (compare-and-set) makes sure that two
workers, or a tab arriving while the card is on the reader, never look the same tap up
twice (nor type it twice in mode C). The last answer for the card on the reader is
kept a moment, for a tab that connects or polls after it was pushed.

Nothing here keeps who the citizen is: the card key lives for the lookup only; the
number goes to the terminal's tabs and, a moment, to the store (the counter shows it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from .. import db
from ..bus import get_bus
from ..cardflow import card as cardio
from ..cardflow.errors import CardFlowError
from ..cardflow.flows import FlowService
from ..cardflow.machine import CardRead, Finished, Flow, Verified
from ..cardflow.purposes import FlowContext, PurposeError
from ..ops import events
from ..outage import service_of
from ..providers.models import Provider
from ..terminals.models import Terminal, TerminalKind
from ..terminals.registry import events_channel
from . import services
from .purposes import PURPOSE_LOOKUP, LookupPurpose

log = logging.getLogger(__name__)

# A card session's answer (and its claim) is kept this long.
RESULT_TTL = 120.0


def _presence_group(terminal_id: int) -> str:
    return f"counter:{terminal_id}"


class CounterPush:
    """Looks up and pushes the number for counters in no-PIN mode."""

    def __init__(self, app: Flask, flows: FlowService) -> None:
        self.app = app
        self.flows = flows
        self.purpose = LookupPurpose()

    # -- who listens -----------------------------------------------------------------

    def present(self, terminal: Terminal, member: str, ttl: float) -> None:
        """A counter tab of `terminal` is listening (for `ttl` seconds)."""
        self.present_id(terminal.id, member, ttl)

    def present_id(self, terminal_id: int, member: str, ttl: float) -> None:
        """A counter tab of the terminal is listening (for `ttl` seconds)."""
        with contextlib.suppress(Exception):
            self.flows.store.touch_presence(_presence_group(terminal_id), member, ttl)

    def absent(self, terminal_id: int, member: str) -> None:
        """That tab left."""
        with contextlib.suppress(Exception):
            self.flows.store.drop_presence(_presence_group(terminal_id), member)

    def result_for(self, terminal: Terminal, card: cardio.CardOnReader) -> dict[str, Any] | None:
        """The number event pushed for the card on the reader, if any."""
        try:
            found = self.flows.store.get(f"n:{terminal.id}:{card.epoch}")
        except Exception:
            return None
        if found is None or "type" not in found.value:
            return None
        return found.value

    # -- events from the bridge's worker ---------------------------------------------

    def on_card(self, terminal_id: int, reader: str, epoch: int) -> None:
        """A card arrived on a terminal's reader (called on the worker holding the bridge)."""
        threading.Thread(
            target=self._run, args=(terminal_id, reader, epoch), name="counter-push", daemon=True
        ).start()

    def on_removed(self, terminal_id: int, epoch: int) -> None:
        """The card left: forget its certificate read."""
        self.flows.forget_card(terminal_id, epoch)

    def tab_arrived(self, terminal_id: int) -> None:
        """A counter tab connected while a card is on the reader and nothing was pushed."""
        threading.Thread(
            target=self._run, args=(terminal_id, None, None), name="counter-push", daemon=True
        ).start()

    # -- the lookup ------------------------------------------------------------------

    def _run(self, terminal_id: int, reader: str | None, epoch: int | None) -> None:
        try:
            with self.app.app_context():
                self.lookup(terminal_id, reader, epoch)
        except Exception:
            log.exception("a pushed lookup failed")

    def lookup(self, terminal_id: int, reader: str | None, epoch: int | None) -> bool:
        """Look the card up and push the answer; False when there was nothing to do."""
        store = self.flows.store
        with db.new_session() as s:
            terminal = s.get(Terminal, terminal_id)
            if terminal is None or terminal.kind != TerminalKind.COUNTER:
                return False
            provider = s.get(Provider, terminal.provider_id)
            if provider is None or not store.present(_presence_group(terminal_id)):
                return False
            link = self.flows.link
            if epoch is None:
                status = cardio.terminal_status(link, terminal_id)
                if status.card is None:
                    return False
                reader, epoch = status.card.reader, status.card.epoch
            try:
                store.put(f"n:{terminal_id}:{epoch}", {}, RESULT_TTL, expect=0)
            except Exception:
                return False  # another worker (or an earlier call) has this tap
            if services.pin_required(provider):
                # The card holder's PIN first: the tab runs that flow itself (/flow).
                event: dict[str, Any] = {"type": "number", "epoch": epoch, "needs_pin": True}
            else:
                ctx = FlowContext(s, terminal, "", self.app.config, link, time.time())
                try:
                    event = self._answered(ctx, reader, epoch)
                except Exception as exc:
                    if service_of(exc) is None:
                        raise
                    # The database went away mid-lookup: say so on the tab (worded there);
                    # the librarian asks for the card to be tapped again.
                    log.warning("counter lookup: %s unavailable", service_of(exc))
                    error = {"code": "service_unavailable", "final": False}
                    event = {"type": "number", "epoch": epoch, "reader": reader, "error": error}
            with contextlib.suppress(Exception):
                store.put(f"n:{terminal_id}:{epoch}", event, RESULT_TTL)
            get_bus(self.app).publish(events_channel(terminal_id), event)
        return True

    def _answered(self, ctx: FlowContext, reader: str | None, epoch: int) -> dict[str, Any]:
        """`_answer`, once more on fresh connections when a connection the database server
        had dropped (a restart) failed it: nothing was committed on a lost connection, and
        the engine replaces every connection as old as that one (webapp.db, webapp.pglane),
        so the librarian sees the number, not "try again", at the first tap after a
        restart. A second loss is the server still gone: raised, and said on the tab."""
        try:
            return self._answer(ctx, reader, epoch)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.info("counter lookup: a dropped database connection; looking up once more")
            ctx.s.rollback()
            return self._answer(ctx, reader, epoch)

    def _answer(self, ctx: FlowContext, reader: str | None, epoch: int) -> dict[str, Any]:
        """The lookup through the one state machine; the event the tabs receive."""
        flow = Flow(
            purpose=PURPOSE_LOOKUP,
            terminal_id=ctx.terminal.id,
            needs_pin=False,
            idle_seconds=self.purpose.idle_seconds(ctx),
            touched_at=ctx.now,
        )
        event: dict[str, Any] = {"type": "number", "epoch": epoch, "reader": reader}
        try:
            read = self.flows.cached_certificate(ctx.terminal.id, epoch)
            if read is None:
                read = cardio.read_certificate(
                    ctx.link, ctx.terminal.id, reader=reader, epoch=epoch
                )
            card = cardio.identify(self.flows.verifier, read.der)
            flow.handle(CardRead(read.reader, read.epoch, card.card_key.hex()), ctx.now)
            flow.handle(Verified(card.card_key.hex(), signed=False), ctx.now)
            self.flows.catch_up(ctx, card)
            outcome = self.purpose.verified(ctx, card, flow.data)
            flow.handle(Finished(), ctx.now)
        except CardFlowError as exc:
            if exc.code.value in events.CARD_REFUSALS:
                events.card_refused(
                    exc.code.value,
                    reason=exc.reason,
                    terminal=ctx.terminal.id,
                    provider=ctx.terminal.provider_id,
                    purpose=PURPOSE_LOOKUP,
                )
            event["error"] = {"code": exc.code.value, "final": exc.final}
            return event
        except PurposeError as exc:
            event["error"] = {"code": exc.code, "final": True, **exc.extra}
            return event
        event["result"] = outcome.body["presentation"]
        event["linked"] = False
        if "notice" in outcome.body:
            event["notice"] = outcome.body["notice"]
        return event
