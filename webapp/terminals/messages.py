"""What travels on the bus between a worker that wants a bridge and the worker holding it.

Typed, like the wire frames they carry: a command is a `bridge.wire` command frame
(BatchCommand, VerifyCommand, TypeCommand, Sip2ConfigureCommand, Sip2Command) and its
answer a wire Result, Sip2Result or Error, both
encoded and validated by `bridge.wire` itself, so the worker holding the socket forwards
exactly what was asked and the asker reads exactly what the bridge said. Nothing here
re-reads card answers: status words are the card driver's business (bridge/jpki.py).

    CommandRequest(frame, timeout)  -> CommandReply(frame)      on terminals.<id>.bridge
    StatusRequest()                 -> StatusReply(...)         on terminals.<id>.bridge

`to_bus()` gives the JSON object the bus carries, `from_bus()` validates one (a
`wire.RemoteProtocolError` for anything malformed, as for a frame off the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge import wire

Command = (
    wire.BatchCommand
    | wire.VerifyCommand
    | wire.TypeCommand
    | wire.Sip2ConfigureCommand
    | wire.Sip2Command
)
Answer = wire.Result | wire.Sip2Result | wire.Error

# The longest a worker holding a bridge waits for its answer (a PIN entry is not
# waited for here: the PIN is typed before the command is sent).
MAX_COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """Run `frame` on the terminal's bridge, waiting at most `timeout` seconds."""

    frame: Command
    timeout: float

    def to_bus(self) -> dict[str, Any]:
        """The bus message."""
        return {"command": wire.encode(self.frame), "timeout": self.timeout}


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The bridge's answer (or the holding worker's: offline, timeout) to a command."""

    frame: Answer

    def to_bus(self) -> dict[str, Any]:
        """The bus message."""
        return {"answer": wire.encode(self.frame)}

    @classmethod
    def from_bus(cls, message: dict[str, Any]) -> CommandReply:
        """Validate a reply from the bus."""
        frame = _frame(message.get("answer"))
        if not isinstance(frame, wire.ANSWERS):
            raise wire.RemoteProtocolError("a command answer must be a result or an error")
        return cls(frame)


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Which readers and cards the terminal's bridge holds now."""

    def to_bus(self) -> dict[str, Any]:
        """The bus message."""
        return {"status": True}


@dataclass(frozen=True, slots=True)
class StatusReply:
    """The terminal's bridge as the holding worker sees it."""

    bridge_id: str
    terminal_id: int
    readers: tuple[wire.ReaderState, ...]
    ready: bool  # the bridge's snapshot of its readers has arrived
    connected_at: float
    last_seen: float

    def to_bus(self) -> dict[str, Any]:
        """The bus message (readers as a wire Snapshot frame)."""
        return {
            "bridge_id": self.bridge_id,
            "terminal_id": self.terminal_id,
            "snapshot": wire.encode(wire.Snapshot(self.readers)),
            "ready": self.ready,
            "connected_at": self.connected_at,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_bus(cls, message: dict[str, Any]) -> StatusReply:
        """Validate a status reply from the bus."""
        snapshot = _frame(message.get("snapshot"))
        if not isinstance(snapshot, wire.Snapshot):
            raise wire.RemoteProtocolError("a status reply carries a snapshot")
        terminal_id = message.get("terminal_id")
        if not isinstance(terminal_id, int) or isinstance(terminal_id, bool):
            raise wire.RemoteProtocolError("bad terminal id")
        return cls(
            bridge_id=wire.check_id(message.get("bridge_id"), "bridge id"),
            terminal_id=terminal_id,
            readers=snapshot.readers,
            ready=message.get("ready") is True,
            connected_at=_number(message.get("connected_at")),
            last_seen=_number(message.get("last_seen")),
        )

    def newest_card(self) -> tuple[str, wire.CardState] | None:
        """The reader and card inserted last (the one the citizen just put down)."""
        cards = [(r.name, r.card) for r in self.readers if r.card is not None]
        if not cards:
            return None
        name, card = max(cards, key=lambda c: c[1].epoch)  # type: ignore[union-attr]
        assert card is not None  # noqa: S101 - filtered above
        return name, card


def request_from_bus(message: dict[str, Any]) -> CommandRequest | StatusRequest:
    """The typed request a bus message is; RemoteProtocolError if it is none."""
    if message.get("status") is True:
        return StatusRequest()
    frame = _frame(message.get("command"))
    if not isinstance(frame, wire.COMMANDS):
        raise wire.RemoteProtocolError("a command request carries a command frame")
    return CommandRequest(frame, command_timeout(_number(message.get("timeout"), default=10.0)))


def command_timeout(seconds: float) -> float:
    """How long the worker holding a bridge waits for a command's answer: as asked,
    within 0.1 s and MAX_COMMAND_TIMEOUT."""
    return max(0.1, min(seconds, MAX_COMMAND_TIMEOUT))


def _frame(text: Any) -> wire.Frame:
    if not isinstance(text, str):
        raise wire.RemoteProtocolError("expected an encoded frame")
    return wire.decode(text)


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def error_answer(code: str, message: str, command_id: str | None = None) -> wire.Error:
    """An Error frame made by the platform itself (bridge offline, timeout)."""
    if command_id is None:
        return wire.Error(code, message[: wire.MAX_MESSAGE])
    return wire.Error(code, message[: wire.MAX_MESSAGE], id=command_id)
