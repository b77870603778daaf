"""`RemoteTransport`: the Transport interface over the bus to a terminal's bridge.

The JPKI driver runs unchanged over it: `drive(jpki.read_certificate(), RemoteTransport(
bus, terminal_id))` reads the card in a reader on another machine, one bus round trip
per batch. The request is the wire command frame itself (`messages.CommandRequest`);
the worker holding the bridge's socket forwards it as it is
(`registry.BridgeConnection.handle_request`) and returns the bridge's Result or Error
frame. Card answers are not read here: status words are the card driver's
(bridge/jpki.py); this module only turns the bridge's error codes into typed errors.

The first batch may leave `epoch` open (the card inserted last); the transport then
pins the reader and epoch the bridge answered with, so every later batch of the same
operation is refused if that card was taken away meanwhile, even if another card (or
the same one, re-inserted) is now on the reader.

Errors a terminal must see, as `bridge.errors` codes: BRIDGE_OFFLINE (nobody serves the
terminal's channel, or the socket dropped), READER_MISSING, NO_CARD, CARD_REMOVED
(also: a command for an older epoch), REFUSED (the bridge's firewall), PIN_RETAP /
PIN_LAST_TRY / PIN_LOCKED (the bridge's PIN guard), TIMEOUT.

`BusTerminalLink` is the `TerminalLink` (interfaces.py) that card flows use; it also
reaches the library system's SIP2 through the terminal's bridge (`sip2_configure`,
`sip2_exchange`; `RemoteSip2` does the work): the platform sends SIP2 text and sealed
passwords, and gets projections (bridge.sip2_wire) or a `Sip2Failed` with the code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bridge import wire
from bridge.apdu import Response
from bridge.errors import (
    CardError,
    Code,
    CommandRefused,
    PINFormatError,
    PINGuardRefused,
    TransportError,
)
from bridge.keyboard import DIGITS
from bridge.sip2_wire import Projection, Sip2Config, Sip2Status
from bridge.transport import Batch, Step

from ..bus import Bus, BusClosed, BusError, BusTimeout, NoServer
from ..ops import metrics
from .interfaces import SealedOutcome
from .messages import (
    Answer,
    Command,
    CommandReply,
    CommandRequest,
    StatusReply,
    StatusRequest,
    command_timeout,
)
from .registry import command_channel, local_connection

log = logging.getLogger(__name__)

# Extra time the requester waits beyond the command's own timeout, so that the worker
# holding the socket answers TIMEOUT itself rather than the bus timing out blind.
BUS_GRACE = 2.0
_CODES = {c.value: c for c in Code}
_GUARD_CODES = (Code.PIN_LOCKED, Code.PIN_LAST_TRY, Code.PIN_RETAP)


class BridgeCommandError(TransportError):
    """A command failed on the bridge; `wire_code` is the bridge's own word for it.

    `code` is the nearest `bridge.errors.Code`; `wire_code` may be more precise, e.g.
    `keyboard_unavailable` (no keyboard backend works on the bridge's machine).
    """

    def __init__(self, message: str, *, code: Code, wire_code: str) -> None:
        super().__init__(message, code=code)
        self.wire_code = wire_code


def error_from_frame(frame: wire.Error) -> CardError:
    """The typed error for a bridge's (or the holding worker's) Error frame."""
    code = _CODES.get(frame.code)
    if code in _GUARD_CODES:
        assert code is not None  # noqa: S101 - membership above
        return PINGuardRefused(frame.message, code=code, tries_left=frame.tries_left or 0)
    if code is Code.PIN_FORMAT:
        return PINFormatError(frame.message)
    if code is Code.REFUSED:
        return CommandRefused(frame.message)
    return BridgeCommandError(frame.message, code=code or Code.TRANSPORT, wire_code=frame.code)


def _ask(bus: Bus, terminal_id: int, message: dict[str, Any], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        answer = bus.request(command_channel(terminal_id), message, timeout)
        op = "command" if "command" in message else "status"
        metrics.BUS_ROUND_TRIP.labels(op=op).observe(time.perf_counter() - started)
        return answer
    except NoServer:
        raise TransportError("the bridge is offline", code=Code.BRIDGE_OFFLINE) from None
    except BusTimeout:
        raise TransportError("no answer from the bridge", code=Code.TIMEOUT) from None
    except BusClosed:
        raise TransportError("the platform is shutting down", code=Code.TRANSPORT) from None
    except BusError as exc:
        raise TransportError(f"bus failure: {exc}", code=Code.TRANSPORT) from None


def _command(bus: Bus, terminal_id: int, frame: Command, timeout: float) -> Answer:
    """Run a command frame on the terminal's bridge: the answer frame (a wire Error for
    what the bridge or the holding worker refused; TransportError when the bus fails,
    wire.ProtocolError for a malformed answer).

    When this process holds the bridge, its connection runs the command here, as the
    bus handler would on this worker (`BridgeConnection.handle_request`), without the
    bus message's JSON passes or the bus's thread hand-offs: the frame goes to the bridge
    encoded and validated all the same (`BridgeConnection.send`)."""
    conn = local_connection(bus, terminal_id)
    if conn is not None:
        try:
            return conn.call(frame, command_timeout(timeout))
        except Exception as exc:
            log.exception("a bridge command failed in this worker")
            raise TransportError(f"bridge request failed: {exc}", code=Code.TRANSPORT) from None
    message = CommandRequest(frame, timeout).to_bus()
    return CommandReply.from_bus(_ask(bus, terminal_id, message, timeout + BUS_GRACE)).frame


def bridge_status(bus: Bus, terminal_id: int, timeout: float = 3.0) -> StatusReply:
    """The terminal's bridge, as the worker holding it sees it (BRIDGE_OFFLINE if none)."""
    conn = local_connection(bus, terminal_id)
    if conn is not None:
        return conn.status()  # held here: what the bus handler would answer
    reply = _ask(bus, terminal_id, StatusRequest().to_bus(), timeout)
    try:
        return StatusReply.from_bus(reply)
    except wire.ProtocolError:
        # The holding worker answered a command reply: the bridge is gone.
        raise TransportError("the bridge is offline", code=Code.BRIDGE_OFFLINE) from None


class RemoteTransport:
    """Sends command frames to the card on a terminal's bridge, through the bus."""

    def __init__(
        self,
        bus: Bus,
        terminal_id: int,
        *,
        reader: str | None = None,
        epoch: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.bus = bus
        self.terminal_id = terminal_id
        self.reader = reader
        self.epoch = epoch
        self.timeout = timeout
        self.tries_left: int | None = None
        self.last_try_armed: bool | None = None

    def _run(self, frame: wire.BatchCommand | wire.VerifyCommand | wire.TypeCommand) -> wire.Result:
        try:
            answer = _command(self.bus, self.terminal_id, frame, self.timeout)
        except wire.ProtocolError as exc:
            raise TransportError(f"malformed answer: {exc}", code=Code.TRANSPORT) from None
        if isinstance(answer, wire.Error):
            raise error_from_frame(answer)
        if answer.id != frame.id:
            raise TransportError("an answer to another command", code=Code.TRANSPORT)
        self._pin(answer)
        return answer

    def _pin(self, answer: wire.Result) -> None:
        """Keep to the reader and card the bridge chose for the first batch."""
        if self.reader is None and answer.reader is not None:
            self.reader = answer.reader
        if self.epoch is None and answer.epoch is not None:
            self.epoch = answer.epoch
        if answer.tries_left is not None:
            self.tries_left = answer.tries_left
        armed = getattr(answer, "last_try_armed", None)
        if armed is not None:
            self.last_try_armed = armed

    def _responses(self, answer: wire.Result, limit: int) -> list[Response]:
        if len(answer.responses) > limit:
            raise TransportError("more responses than commands", code=Code.TRANSPORT)
        return list(answer.responses)

    def transmit(self, batch: Batch) -> list[Response]:
        """One round trip: the whole batch runs on the bridge (see `Transport`)."""
        try:
            frame = wire.BatchCommand(tuple(batch), reader=self.reader, epoch=self.epoch)
            wire.encode(frame)  # bounds (steps, APDU sizes) are ours to keep
        except wire.LocalProtocolError as exc:
            raise TransportError(str(exc), code=Code.TRANSPORT) from None
        return self._responses(self._run(frame), len(batch))

    def verify_sealed(
        self,
        sealed: Mapping[str, Any],
        *,
        command_id: str,
        confirm_last_try: bool = False,
        then: Sequence[Step] = (),
    ) -> SealedOutcome:
        """The sealed-PIN command: the bridge unseals, guards, VERIFYs once, runs `then`.

        `command_id` is the id the browser sealed the PIN for (bridge.seal.SealContext).
        A malformed envelope is refused here (REFUSED) without reaching the bridge.
        """
        try:
            frame = wire.VerifyCommand(
                sealed=dict(sealed),
                confirmed=confirm_last_try,
                then=tuple(then),
                reader=self.reader,
                epoch=self.epoch,
                id=wire.check_id(command_id, "command id"),
            )
            frame = wire.decode(wire.encode(frame))  # validated as the bridge will
        except wire.ProtocolError as exc:
            raise CommandRefused(f"the sealed PIN is malformed: {exc}") from None
        assert isinstance(frame, wire.VerifyCommand)  # noqa: S101 - round trip
        answer = self._run(frame)
        return SealedOutcome(answer.tries_left, tuple(self._responses(answer, 1 + len(then))))

    def type_text(self, text: str, *, suffix: str = "enter", allowed: str = DIGITS) -> None:
        """Keyboard output on the bridge's machine (into the focused window)."""
        try:
            frame = wire.TypeCommand(text, suffix, allowed)
            wire.encode(frame)
        except wire.LocalProtocolError as exc:
            raise TransportError(str(exc), code=Code.TRANSPORT) from None
        self._run(frame)

    def status(self) -> StatusReply:
        """The bridge's readers and cards right now (BRIDGE_OFFLINE if not connected)."""
        return bridge_status(self.bus, self.terminal_id, self.timeout)


class Sip2Failed(BridgeCommandError):
    """A SIP2 command failed. `wire_code` says why: a `bridge.sip2_wire.Sip2Code` value
    (`sip2_not_configured`, `sip2_refused`, `sip2_throttled`, `sip2_unreachable`, ...),
    or `bridge_offline`, `timeout`, `refused` (a command id used twice), `transport`."""


_SIP2_NEAREST = {"sip2_refused": Code.REFUSED, "sip2_timeout": Code.TIMEOUT}


class RemoteSip2:
    """The library system's SIP2, through a terminal's bridge over the bus.

    The platform never holds a library password: the settings carry the login (and
    terminal) password sealed by the provider admin's page, an exchange the patron's
    password sealed by the kiosk or home page for its command id.
    """

    def __init__(self, bus: Bus, terminal_id: int, *, timeout: float = 30.0) -> None:
        self.bus = bus
        self.terminal_id = terminal_id
        self.timeout = timeout

    def _run(self, frame: wire.Sip2ConfigureCommand | wire.Sip2Command) -> Projection:
        try:
            answer = _command(self.bus, self.terminal_id, frame, self.timeout)
        except TransportError as exc:
            raise Sip2Failed(str(exc), code=exc.code, wire_code=exc.code.value) from None
        except wire.ProtocolError as exc:
            raise Sip2Failed(
                f"malformed answer: {exc}", code=Code.TRANSPORT, wire_code="transport"
            ) from None
        if isinstance(answer, wire.Error):
            code = _SIP2_NEAREST.get(answer.code) or _CODES.get(answer.code) or Code.TRANSPORT
            raise Sip2Failed(answer.message, code=code, wire_code=answer.code)
        if not isinstance(answer, wire.Sip2Result) or answer.id != frame.id:
            raise Sip2Failed(
                "an answer to another command", code=Code.TRANSPORT, wire_code="transport"
            )
        return answer.projection

    def configure(self, config: Sip2Config) -> Sip2Status:
        """Give the bridge its SIP2 settings; it connects and logs in: the 98 projected.

        The bridge keeps the settings (in memory, until it restarts) even when this
        fails, e.g. with `sip2_unreachable` while the library system is down.
        """
        frame = wire.Sip2ConfigureCommand(config)
        try:
            wire.encode(frame)
        except wire.LocalProtocolError as exc:
            raise Sip2Failed(str(exc), code=Code.REFUSED, wire_code="sip2_refused") from None
        status = self._run(frame)
        if not isinstance(status, Sip2Status):
            raise Sip2Failed("not a status", code=Code.TRANSPORT, wire_code="transport")
        return status

    def exchange(
        self,
        frame: str,
        *,
        sealed: Mapping[str, Any] | None = None,
        command_id: str | None = None,
    ) -> Projection:
        """One SIP2 request (text: 99, 63 with a blank summary, 35, or 23), the reply
        projected: Sip2Status for 99, Sip2Patron for 63/23, Sip2EndSession for 35.

        `sealed`: the patron's password sealed for (bridge id, "sip2-patron",
        `command_id`); the platform picks the command id (`bridge.wire.new_id()`) and
        gives it to the page before it seals.
        """
        if sealed is not None and command_id is None:
            raise Sip2Failed(
                "a sealed password needs its command id",
                code=Code.REFUSED,
                wire_code="sip2_refused",
            )
        try:
            command = wire.Sip2Command(
                frame,
                sealed=None if sealed is None else dict(sealed),
                id=wire.new_id() if command_id is None else wire.check_id(command_id, "command id"),
            )
            decoded = wire.decode(wire.encode(command))  # validated as the bridge will
        except wire.ProtocolError as exc:
            raise Sip2Failed(
                f"malformed SIP2 command: {exc}", code=Code.REFUSED, wire_code="sip2_refused"
            ) from None
        assert isinstance(decoded, wire.Sip2Command)  # noqa: S101 - round trip
        return self._run(decoded)


class BusTerminalLink:
    """`TerminalLink` over the message bus: any worker reaches any terminal's bridge."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def status(self, terminal_id: int, *, timeout: float = 3.0) -> StatusReply:
        """The bridge's readers and cards now; TransportError BRIDGE_OFFLINE if none."""
        return bridge_status(self.bus, terminal_id, timeout)

    def card(
        self,
        terminal_id: int,
        *,
        reader: str | None = None,
        epoch: int | None = None,
        timeout: float = 10.0,
    ) -> RemoteTransport:
        """A transport to the card of `epoch` in `reader` (the newest card if None)."""
        return RemoteTransport(self.bus, terminal_id, reader=reader, epoch=epoch, timeout=timeout)

    def type_text(
        self, terminal_id: int, text: str, *, suffix: str, allowed: str, timeout: float = 5.0
    ) -> None:
        """Keyboard output on the bridge's machine."""
        RemoteTransport(self.bus, terminal_id, timeout=timeout).type_text(
            text, suffix=suffix, allowed=allowed
        )

    def sip2_configure(
        self, terminal_id: int, config: Sip2Config, *, timeout: float = 30.0
    ) -> Sip2Status:
        """Give the terminal's bridge its SIP2 settings (it connects, logs in): the 98."""
        return RemoteSip2(self.bus, terminal_id, timeout=timeout).configure(config)

    def sip2_exchange(
        self,
        terminal_id: int,
        frame: str,
        *,
        sealed: Mapping[str, Any] | None = None,
        command_id: str | None = None,
        timeout: float = 30.0,
    ) -> Projection:
        """One SIP2 exchange through the terminal's bridge: the reply projected."""
        return RemoteSip2(self.bus, terminal_id, timeout=timeout).exchange(
            frame, sealed=sealed, command_id=command_id
        )
