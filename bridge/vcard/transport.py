"""`VirtualCardTransport`: the Transport interface over a VirtualCard, in-process.

The card is powered on when the transport is built (a fresh card session, as when a
citizen puts the card on the reader). `remove()` pulls the card out: every later
transmit raises `TransportError(code=Code.CARD_REMOVED)`, and `remove_after=N` does
that by itself once N APDUs have reached the card (for "card removed mid-read").
Counters (`transmit_calls`, `apdu_count`) let tests check round trips.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ..apdu import Command, Response, parse_response
from ..errors import Code, TransportError
from ..transport import Batch, run_batch

SENT_HISTORY = 4096


class Card(Protocol):
    """What a reader needs of a card: power and APDUs (VirtualCard, or a test's fake)."""

    def power_on(self) -> bytes:
        """Power up; returns the ATR."""
        ...

    def power_off(self) -> None:
        """Power down."""
        ...

    def transmit(self, raw: bytes) -> bytes:
        """One command APDU in, its response (data + SW) out."""
        ...


class VirtualCardTransport:
    """Sends batches to a (virtual) card in this process (implements `Transport`)."""

    def __init__(self, card: Card, *, remove_after: int | None = None) -> None:
        self.card = card
        self.remove_after = remove_after
        self.transmit_calls = 0
        self.apdu_count = 0
        self.removed = False
        # The last commands sent, for tests that prove what reached the card (never
        # logged: a VERIFY's data is the PIN). Bounded so that a long bench run does not
        # grow without end; far more than any one card flow sends.
        self.sent: deque[Command] = deque(maxlen=SENT_HISTORY)
        self.atr = card.power_on()

    def transmit(self, batch: Batch) -> list[Response]:
        """Send the steps in order, stopping per the batch rule (see bridge.transport)."""
        self.transmit_calls += 1
        return run_batch(self._send_one, batch)

    def _send_one(self, command: Command) -> Response:
        if self.remove_after is not None and self.apdu_count >= self.remove_after:
            self.remove()
        if self.removed:
            raise TransportError("card removed from the reader", code=Code.CARD_REMOVED)
        self.apdu_count += 1
        self.sent.append(command)
        return parse_response(self.card.transmit(command.encode()))

    def remove(self) -> None:
        """Pull the card out of the reader: its session ends, later transmits fail."""
        self.removed = True
        self.card.power_off()

    def insert(self) -> bytes:
        """Put the card back: a new card session (nothing verified); returns the ATR."""
        self.removed = False
        self.remove_after = None
        self.atr = self.card.power_on()
        return self.atr
