"""The contract between card flows and terminals: reach a terminal's bridge from anywhere.

Card-flow code (webapp/cardflow) depends on `TerminalLink` only; `BusTerminalLink`
(remote.py) is the implementation over the message bus, picked in `create_app`. The
docstrings here are the contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.apdu import Response
from bridge.sip2_wire import Projection, Sip2Config, Sip2Status
from bridge.transport import Batch, Step

from .messages import StatusReply


@dataclass(frozen=True, slots=True)
class SealedOutcome:
    """What a sealed-PIN command answered: the tries left it read before its VERIFY,
    and the responses (the VERIFY's, then the steps that followed it)."""

    tries_left: int | None
    responses: tuple[Response, ...]


class CardTransport(Protocol):
    """A card on a terminal's reader: batches, and the bridge's sealed-PIN command.

    Pinned to one card session: the first answer names the reader and epoch, and every
    later command is refused (CARD_REMOVED) if that card has left the reader since.
    """

    reader: str | None
    epoch: int | None
    tries_left: int | None  # from the last answer that read them (None: not read)
    last_try_armed: bool | None  # the bridge's word on the last try, when it read 1

    def transmit(self, batch: Batch) -> list[Response]:
        """One round trip: the batch runs on the bridge (bridge.transport.Transport)."""
        ...

    def verify_sealed(
        self,
        sealed: Mapping[str, Any],
        *,
        command_id: str,
        confirm_last_try: bool = False,
        then: Sequence[Step] = (),
    ) -> SealedOutcome:
        """The bridge unseals the PIN, guards the tries, VERIFYs once, then runs `then`."""
        ...


class TerminalLink(Protocol):
    """Reaches the bridge of any terminal, whichever worker holds its connection."""

    def status(self, terminal_id: int, *, timeout: float = 3.0) -> StatusReply:
        """The bridge's readers and cards now; TransportError BRIDGE_OFFLINE if none."""
        ...

    def card(
        self,
        terminal_id: int,
        *,
        reader: str | None = None,
        epoch: int | None = None,
        timeout: float = 10.0,
    ) -> CardTransport:
        """A transport to the card of `epoch` in `reader` (the newest card if None)."""
        ...

    def type_text(
        self, terminal_id: int, text: str, *, suffix: str, allowed: str, timeout: float = 5.0
    ) -> None:
        """Keyboard output on the bridge's machine (into the library system's window)."""
        ...

    def sip2_configure(
        self, terminal_id: int, config: Sip2Config, *, timeout: float = 30.0
    ) -> Sip2Status:
        """Give the terminal's bridge its SIP2 settings; it connects and logs in, and the
        98 comes back projected. Sip2Failed (remote.py) with the bridge's code."""
        ...

    def sip2_exchange(
        self,
        terminal_id: int,
        frame: str,
        *,
        sealed: Mapping[str, Any] | None = None,
        command_id: str | None = None,
        timeout: float = 30.0,
    ) -> Projection:
        """One SIP2 request through the bridge's SIP2 firewall; the reply projected
        (never the reply). `sealed`: the patron's password, sealed for `command_id`."""
        ...
