"""`RemoteTransport`: the Transport interface over the bus to a terminal's bridge.

The JPKI driver runs unchanged over it: `drive(jpki.read_certificate(), RemoteTransport(
bus, terminal_id))` reads the card in a reader on another machine, one bus round trip
per batch. The worker holding the bridge's socket forwards the batch on it
(`registry.BridgeConnection.handle_request`).

The first batch may leave `epoch` open (the card inserted last); the transport then
pins the reader and epoch the bridge answered with, so every later batch of the same
operation is refused if that card was taken away meanwhile, even if another card (or
the same one, re-inserted) is now on the reader.

Errors a terminal must see, as `bridge.errors` codes: BRIDGE_OFFLINE (nobody serves the
terminal's channel, or the socket dropped), READER_MISSING, NO_CARD, CARD_REMOVED
(also: a command for an older epoch), REFUSED (the bridge's firewall), TIMEOUT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge import wire
from bridge.apdu import SW, Response, is_wrong_pin
from bridge.errors import (
    CardError,
    CardStatusError,
    Code,
    CommandRefused,
    PINFormatError,
    PINGuardRefused,
    PINLocked,
    TransportError,
    WrongPIN,
)
from bridge.jpki import MYNUMBER_2015, CardProfile, select_ef, sign_command
from bridge.keyboard import DIGITS
from bridge.transport import Batch, Step

from ..bus import Bus, BusClosed, BusError, BusTimeout, NoServer
from .registry import command_channel

# Extra time the requester waits beyond the command's own timeout, so that the worker
# holding the socket answers TIMEOUT itself rather than the bus timing out blind.
BUS_GRACE = 2.0
_CODES = {c.value: c for c in Code}


@dataclass(frozen=True)
class VerifyOutcome:
    """What a sealed-PIN command returned: tries left before it, and the responses."""

    tries_left: int | None
    responses: tuple[Response, ...]


class BridgeCommandError(TransportError):
    """A command failed on the bridge; `wire_code` is the bridge's own word for it.

    `code` is the nearest `bridge.errors.Code`; `wire_code` may be more precise, e.g.
    `keyboard_unavailable` (no keyboard backend works on the bridge's machine).
    """

    def __init__(self, message: str, *, code: Code, wire_code: str) -> None:
        super().__init__(message, code=code)
        self.wire_code = wire_code


def error_from_reply(reply: Mapping[str, Any]) -> CardError:
    """The typed error for a failed command's reply."""
    code = str(reply.get("code", "transport"))
    message = str(reply.get("message", code))
    tries = reply.get("tries_left")
    if code in (Code.PIN_LOCKED, Code.PIN_LAST_TRY):
        return PINGuardRefused(message, code=_CODES[code], tries_left=int(tries or 0))
    if code == Code.PIN_FORMAT:
        return PINFormatError(message)
    if code == Code.REFUSED:
        return CommandRefused(message)
    return BridgeCommandError(message, code=_CODES.get(code, Code.TRANSPORT), wire_code=code)


class RemoteTransport:
    """Sends batches to the card on a terminal's bridge, through the bus."""

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

    def _request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        timeout = self.timeout if timeout is None else timeout
        message = {**message, "timeout": timeout}
        if self.reader is not None:
            message["reader"] = self.reader
        if self.epoch is not None:
            message["epoch"] = self.epoch
        channel = command_channel(self.terminal_id)
        try:
            reply = self.bus.request(channel, message, timeout + BUS_GRACE)
        except NoServer:
            raise TransportError("the bridge is offline", code=Code.BRIDGE_OFFLINE) from None
        except BusTimeout:
            raise TransportError("no answer from the bridge", code=Code.TIMEOUT) from None
        except BusClosed:
            raise TransportError("the platform is shutting down", code=Code.TRANSPORT) from None
        except BusError as exc:
            raise TransportError(f"bus failure: {exc}", code=Code.TRANSPORT) from None
        if not reply.get("ok"):
            raise error_from_reply(reply)
        self._pin(reply)
        return reply

    def _pin(self, reply: Mapping[str, Any]) -> None:
        """Keep to the reader and card the bridge chose for the first batch."""
        reader, epoch = reply.get("reader"), reply.get("epoch")
        if self.reader is None and isinstance(reader, str):
            self.reader = reader
        if self.epoch is None and isinstance(epoch, int):
            self.epoch = epoch

    def _responses(self, reply: Mapping[str, Any], limit: int) -> list[Response]:
        try:
            responses = list(wire.responses_from_json(reply.get("responses")))
        except wire.ProtocolError as exc:
            raise TransportError(f"malformed answer: {exc}", code=Code.TRANSPORT) from None
        if len(responses) > limit:
            raise TransportError("more responses than commands", code=Code.TRANSPORT)
        return responses

    def transmit(self, batch: Batch) -> list[Response]:
        """One round trip: the whole batch runs on the bridge (see `Transport`)."""
        reply = self._request({"op": "batch", "steps": wire.steps_to_json(list(batch))})
        return self._responses(reply, len(batch))

    def verify_sealed(
        self,
        sealed: Mapping[str, Any],
        *,
        command_id: str,
        confirm_last_try: bool = False,
        then: Sequence[Step] = (),
    ) -> VerifyOutcome:
        """The sealed-PIN command: the bridge unseals, guards, VERIFYs once, runs `then`.

        `command_id` is the id the browser sealed the PIN for (bridge.seal.SealContext).
        """
        reply = self._request(
            {
                "op": "verify",
                "id": command_id,
                "sealed": dict(sealed),
                "confirmed": confirm_last_try,
                "then": wire.steps_to_json(list(then)),
            }
        )
        tries = reply.get("tries_left")
        return VerifyOutcome(
            tries if isinstance(tries, int) else None, tuple(self._responses(reply, 1 + len(then)))
        )

    def type_text(self, text: str, *, suffix: str = "enter", allowed: str = DIGITS) -> None:
        """Keyboard output on the bridge's machine (into the focused window)."""
        self._request({"op": "type", "text": text, "suffix": suffix, "allowed": allowed})

    def status(self) -> dict[str, Any]:
        """The bridge's readers and cards right now (BRIDGE_OFFLINE if not connected)."""
        try:
            return self.bus.request(
                command_channel(self.terminal_id), {"op": "status"}, self.timeout
            )
        except NoServer:
            raise TransportError("the bridge is offline", code=Code.BRIDGE_OFFLINE) from None
        except BusError as exc:
            raise TransportError(f"bus failure: {exc}", code=Code.TIMEOUT) from None


def sealed_verify_and_sign(
    transport: RemoteTransport,
    sealed: Mapping[str, Any],
    command_id: str,
    digest_info: bytes,
    *,
    confirm_last_try: bool = False,
    profile: CardProfile = MYNUMBER_2015,
) -> bytes:
    """PIN (sealed in the browser) and signature in one round trip; the signature."""
    then = [Step(select_ef(profile.ef_auth_key)), Step(sign_command(digest_info))]
    outcome = transport.verify_sealed(
        sealed, command_id=command_id, confirm_last_try=confirm_last_try, then=then
    )
    verify = outcome.responses[0]
    if is_wrong_pin(verify.sw):
        raise WrongPIN(verify.sw & 0x0F)
    if verify.sw == SW.AUTH_METHOD_BLOCKED:
        raise PINLocked(verify.sw)
    if verify.sw != SW.OK:
        raise CardStatusError("VERIFY failed", sw=verify.sw)
    if len(outcome.responses) < 3 or outcome.responses[1].sw != SW.OK:
        last = outcome.responses[-1].sw
        raise CardStatusError("signature key not selectable", sw=last)
    signature = outcome.responses[2]
    if signature.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
        raise CardStatusError("PIN not verified", sw=signature.sw, code=Code.PIN_NOT_VERIFIED)
    if signature.sw != SW.OK or len(signature.data) != profile.signature_length:
        raise CardStatusError("COMPUTE DIGITAL SIGNATURE failed", sw=signature.sw)
    return signature.data
