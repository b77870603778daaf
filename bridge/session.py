"""The bridge's state: readers, cards and epochs, and the commands it serves.

Independent of the network: the client feeds it reader events (from PC/SC or the
virtual card) and command frames, and sends whatever frames it returns or emits. Every
command reaches a card only through the APDU firewall (bridge.firewall); a VERIFY only
ever comes from the sealed-PIN command, built by the firewall behind the PIN guard.

Epochs. Every insertion gets an epoch larger than any before it, also across bridge
restarts (it starts from the clock in milliseconds), so a command addressed to the card
of an older epoch, one that has since been pulled out and maybe put back, is refused
instead of reaching whichever card is in the reader now.

The last try. Epochs are also what the re-tap rule (bridge.lasttry) compares: with one
try left, a VERIFY goes only to a card session that began after the bridge first saw
one try left on that reader. Only `insert_card` makes an epoch, and only the reader
watcher calls it (a card put on the reader); a reset of the card or a failed transfer
keeps the card session and its epoch.

Never logs PINs or APDU data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec

from . import wire
from .apdu import SW, Command, Response
from .errors import CardError, Code, CommandRefused, TransportError
from .firewall import INS_SELECT, Firewall, SendOne, TriesSeen, filter_batch, run_sealed_verify
from .keyboard import KeyboardError, KeyboardOutput, NoKeyboard, type_number
from .lasttry import LastTryRecords
from .seal import SealContext, SealError, open_sealed_pin
from .sip2 import Sip2Error
from .sip2.service import Sip2Service
from .transport import OK_ONLY, Step, Transport

log = logging.getLogger(__name__)

Emit = Callable[[wire.Frame], None]
# A card pulled out in the middle of a transfer may first show as a failed transfer
# (vpcd answers nothing; some readers report a generic error) and only then as a
# removal: a failure followed this soon by the removal is reported as the removal.
REMOVAL_GRACE = 0.5
# How many command ids the bridge remembers to refuse a replayed command.
SEEN_IDS = 4096


@dataclass(eq=False)
class CardSlot:
    """A card in a reader: its transport, firewall state and epoch."""

    atr: bytes
    epoch: int
    transport: Transport
    firewall: Firewall = field(default_factory=Firewall)
    gone: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def removed(self) -> bool:
        """True once the card has left the reader."""
        return self.gone.is_set()

    def send(self, command: Command) -> Response:
        """One APDU to this card; CARD_REMOVED once the card has left the reader."""
        return self._one(self._transmit_one, command)

    def _transmit_one(self, command: Command) -> Response:
        responses = self.transport.transmit([Step(command)])
        if not responses:
            raise TransportError("the card did not answer", code=Code.TRANSPORT)
        return responses[0]

    def _one(self, send: SendOne, command: Command) -> Response:
        if self.removed:
            raise TransportError("the card was removed", code=Code.CARD_REMOVED)
        try:
            response = send(command)
        except TransportError as exc:
            if exc.code == Code.TRANSPORT and self.gone.wait(REMOVAL_GRACE):
                raise TransportError("the card was removed", code=Code.CARD_REMOVED) from exc
            raise
        if self.removed:
            raise TransportError("the card was removed", code=Code.CARD_REMOVED)
        return response

    @contextmanager
    def held(self, *, reset_after: bool = False) -> Iterator[SendOne]:
        """The card held for a sequence of single APDUs (one PC/SC transaction); yields
        a send with `send`'s removal rules. `reset_after`: the transaction ends with a
        reset of the card (nothing verified inside outlives it).

        A transport without `hold` (the in-process virtual card: nothing else can reach
        it) sends each APDU on its own. A failed transfer leaves the card's state
        unknown, and a reset clears it: the firewall then starts from nothing.
        """
        hold = getattr(self.transport, "hold", None)
        if hold is None:
            yield self.send
            return
        if self.removed:
            raise TransportError("the card was removed", code=Code.CARD_REMOVED)
        try:
            with hold(reset_after=reset_after) as raw:
                yield lambda command: self._one(raw, command)
        except TransportError:
            self.firewall.reset()
            raise
        finally:
            if reset_after:
                self.firewall.reset()

    def run(self, steps: Sequence[Step]) -> list[Response]:
        """A batch behind the firewall, in one transport call when that is just as safe.

        The firewall's state changes only on SELECTs, and only as the card answers them.
        When every SELECT of the batch lets it go on only after 9000, every step that is
        sent meets exactly the state of the firewall's all-9000 dry run, so checking that
        run up front is checking each step: the batch then goes to the transport whole
        (one PC/SC transaction, one round trip to pcscd per APDU and no more). Otherwise
        it goes step by step (`filter_batch`).
        """
        if not all(step.proceed_on <= OK_ONLY for step in steps if step.command.ins == INS_SELECT):
            return filter_batch(self.firewall, steps, self.send)
        dry = Firewall()
        dry.applet, dry.ef = self.firewall.applet, self.firewall.ef
        for step in steps:
            decision = dry.check(step.command)
            if not decision.allowed:
                raise CommandRefused(decision.reason)
            dry.observe(step.command, Response(b"", SW.OK))
        if self.removed:
            raise TransportError("the card was removed", code=Code.CARD_REMOVED)
        try:
            responses = self.transport.transmit(list(steps))
        except TransportError as exc:
            # Whatever was sent may have moved the card's state: start from nothing.
            self.firewall.reset()
            if exc.code == Code.TRANSPORT and self.gone.wait(REMOVAL_GRACE):
                raise TransportError("the card was removed", code=Code.CARD_REMOVED) from exc
            raise
        if self.removed:
            raise TransportError("the card was removed", code=Code.CARD_REMOVED)
        if len(responses) > len(steps):
            raise TransportError("more responses than commands", code=Code.TRANSPORT)
        for step, response in zip(steps, responses, strict=False):
            self.firewall.observe(step.command, response)
        return responses


class BridgeSession:
    """Readers and cards on this machine, and the commands the platform sends them."""

    def __init__(
        self,
        bridge_id: str,
        seal_key: ec.EllipticCurvePrivateKey,
        keyboard: KeyboardOutput | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bridge_id = bridge_id
        self._seal_key = seal_key
        self.keyboard: KeyboardOutput = keyboard or NoKeyboard("keyboard output is off")
        self._clock = clock
        self._lock = threading.Lock()
        self._keyboard_lock = threading.Lock()
        self._readers: dict[str, CardSlot | None] = {}
        self._epoch = 0
        # In memory only: a restart forgets every record, and then the last try needs
        # a re-tap again (fail closed).
        self.last_try = LastTryRecords()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.emit: Emit = lambda frame: None
        # The library system's SIP2, through this bridge (none until sip2_configure).
        self.sip2 = Sip2Service(bridge_id, seal_key)

    # -- reader events (from the watcher's thread) -----------------------------------

    def add_reader(self, name: str) -> None:
        """A reader appeared (empty)."""
        with self._lock:
            if name in self._readers or len(self._readers) >= wire.MAX_READERS:
                return
            self._readers[name] = None
        self.emit(wire.ReaderAdded(name))

    def remove_reader(self, name: str) -> None:
        """A reader disappeared (with its card, if any)."""
        self.remove_card(name)
        with self._lock:
            self.last_try.reader_removed(name)
            if self._readers.pop(name, "absent") == "absent":
                return
        self.emit(wire.ReaderRemoved(name))

    def insert_card(
        self, name: str, atr: bytes, transport: Transport, *, retap: bool = True
    ) -> int:
        """A card was inserted into `name`; returns its new epoch.

        `retap=False`: the watcher never saw the reader empty (the card's ATR changed
        while it stayed present): a new card session, but not a re-tap for the last try.
        """
        self.remove_card(name)
        with self._lock:
            if name not in self._readers:
                self._readers[name] = None
                added = True
            else:
                added = False
            self._epoch = max(self._epoch + 1, int(self._clock() * 1000))
            firewall = Firewall(self.last_try.card(name, self._epoch))
            slot = CardSlot(atr[: wire.MAX_ATR_BYTES], self._epoch, transport, firewall)
            self._readers[name] = slot
            self.last_try.card_inserted(name, slot.epoch, retap=retap)
        if added:
            self.emit(wire.ReaderAdded(name))
        log.info("card inserted in %r (epoch %d)", name, slot.epoch)
        self.emit(wire.CardInserted(name, slot.atr, slot.epoch))
        return slot.epoch

    def remove_card(self, name: str) -> None:
        """The card left `name` (no-op when it was empty)."""
        with self._lock:
            slot = self._readers.get(name)
            if slot is None:
                return
            self._readers[name] = None
            slot.gone.set()
            self.last_try.card_removed(name, slot.epoch)
        log.info("card removed from %r (epoch %d)", name, slot.epoch)
        # Told first: closing the transport of a vanished card can wait on a command
        # still failing on it (PC/SC serializes calls on one context), and the platform
        # must not keep showing a card that is gone meanwhile.
        self.emit(wire.CardRemoved(name, slot.epoch))
        # A transport that can tell a vanished card from a closing one is told so.
        close = getattr(slot.transport, "vanished", None) or getattr(slot.transport, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # a transport of a vanished card may fail to close
                log.debug("closing the transport of a removed card failed", exc_info=True)

    def close(self) -> None:
        """The bridge is stopping: close the library system's connection (SIP2)."""
        self.sip2.close()

    def snapshot(self) -> wire.Snapshot:
        """Every reader and card right now."""
        with self._lock:
            return wire.Snapshot(
                tuple(
                    wire.ReaderState(
                        name, None if slot is None else wire.CardState(slot.atr, slot.epoch)
                    )
                    for name, slot in self._readers.items()
                )
            )

    def card(self, name: str) -> CardSlot | None:
        """The card currently in reader `name` (None when empty or unknown)."""
        with self._lock:
            return self._readers.get(name)

    # -- commands (each on its own thread, from the client) -----------------------------

    def handle(self, command: wire.Frame) -> wire.Result | wire.Sip2Result | wire.Error:
        """Serve one command frame; always answers with a result or an Error of its id."""
        try:
            self._remember(command.id)
            if isinstance(command, wire.BatchCommand):
                return self._batch(command)
            if isinstance(command, wire.VerifyCommand):
                return self._verify(command)
            if isinstance(command, wire.TypeCommand):
                return self._type(command)
            if isinstance(command, wire.Sip2ConfigureCommand):
                return self.sip2.configure(command)
            if isinstance(command, wire.Sip2Command):
                return self.sip2.exchange(command)
            return wire.Error("transport", "not a command", id=command.id)
        except Sip2Error as exc:
            return wire.Error(exc.code.value, str(exc)[:200], id=command.id)
        except CardError as exc:
            tries = getattr(exc, "tries_left", None)
            return wire.Error(exc.code.value, str(exc)[:200], tries_left=tries, id=command.id)
        except KeyboardError as exc:
            return wire.Error(exc.code, str(exc)[:200], id=command.id)
        except Exception:
            log.exception("command %s failed", type(command).__name__)
            return wire.Error(Code.TRANSPORT.value, "internal error in the bridge", id=command.id)

    def _remember(self, command_id: str) -> None:
        """Refuse a command id seen before: a command is never run twice."""
        with self._lock:
            if command_id in self._seen:
                raise CommandRefused("this command was already received (replay)")
            self._seen[command_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)

    def _pick(self, reader: str | None, epoch: int | None) -> tuple[str, CardSlot]:
        """The reader and card a command is for; typed errors when it is not there."""
        with self._lock:
            if reader is not None:
                if reader not in self._readers:
                    raise TransportError(f"no reader {reader!r}", code=Code.READER_MISSING)
                slot = self._readers[reader]
                candidates = [] if slot is None else [(reader, slot)]
            else:
                if not self._readers:
                    raise TransportError("no card reader connected", code=Code.READER_MISSING)
                candidates = [(n, s) for n, s in self._readers.items() if s is not None]
            if not candidates:
                raise TransportError("no card in the reader", code=Code.NO_CARD)
            if epoch is None:
                # The card inserted last is the one the citizen just put down.
                return max(candidates, key=lambda c: c[1].epoch)
            for name, slot in candidates:
                if slot.epoch == epoch:
                    return name, slot
        raise TransportError(
            f"the card of epoch {epoch} is no longer in the reader", code=Code.CARD_REMOVED
        )

    def _batch(self, command: wire.BatchCommand) -> wire.Result:
        name, slot = self._pick(command.reader, command.epoch)
        with slot.lock:
            slot.firewall.tries_seen = None
            responses = slot.run(command.steps)
            seen = slot.firewall.tries_seen
        return wire.Result(
            tuple(responses),
            reader=name,
            epoch=slot.epoch,
            tries_left=None if seen is None else seen.tries,
            last_try_armed=self._last_try_armed(name, slot, seen),
            id=command.id,
        )

    def _verify(self, command: wire.VerifyCommand) -> wire.Result:
        name, slot = self._pick(command.reader, command.epoch)
        # The seal binds the PIN to this bridge and this command id: a sealed PIN
        # relayed to another bridge or replayed in another command does not open.
        context = SealContext(self.bridge_id, command.id)
        try:
            pin = open_sealed_pin(self._seal_key, command.sealed, context)
        except SealError as exc:
            raise CommandRefused(f"the sealed PIN does not open: {exc}") from None
        # One PC/SC transaction from the tries read to the signature: no other
        # application can spend a try between the guard's read and the VERIFY, or use
        # the verified PIN before our signature; and it ends with a reset of the card,
        # so none can use it after.
        with slot.lock, slot.held(reset_after=True) as send:
            slot.firewall.tries_seen = None
            tries, answer = run_sealed_verify(
                slot.firewall, pin, confirmed=command.confirmed, send=send
            )
            del pin
            responses = [answer]
            if answer.ok and command.then:
                responses += filter_batch(slot.firewall, command.then, send)
            seen = slot.firewall.tries_seen
        return wire.Result(
            tuple(responses),
            reader=name,
            epoch=slot.epoch,
            tries_left=tries,
            last_try_armed=self._last_try_armed(name, slot, seen),
            id=command.id,
        )

    def _last_try_armed(self, name: str, slot: CardSlot, seen: TriesSeen | None) -> bool | None:
        """For a command that left the card at one try: may the last try go now (True),
        or must the card leave the reader and come back first (False)? None otherwise."""
        if seen is None or seen.tries != 1:
            return None
        return self.last_try.armed(name, slot.epoch)

    def _type(self, command: wire.TypeCommand) -> wire.Result:
        with self._keyboard_lock:
            type_number(self.keyboard, command.text, allowed=command.allowed, suffix=command.suffix)
        return wire.Result(id=command.id)
