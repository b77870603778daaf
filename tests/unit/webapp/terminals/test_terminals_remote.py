"""RemoteTransport over a real in-process bus, with a stand-in for the worker holding the
bridge: the bus carries the wire frames themselves (terminals/messages.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge import jpki, wire
from bridge.apdu import Response
from bridge.errors import (
    CardError,
    Code,
    CommandRefused,
    PINFormatError,
    PINGuardRefused,
    TransportError,
)
from bridge.transport import Step, drive
from webapp.bus import InProcessBus
from webapp.terminals.messages import (
    CommandReply,
    CommandRequest,
    StatusReply,
    StatusRequest,
    request_from_bus,
)
from webapp.terminals.registry import command_channel
from webapp.terminals.remote import RemoteTransport

TERMINAL = 42

Answer = Callable[[wire.Frame], wire.Result | wire.Error]


@pytest.fixture
def bus() -> Iterator[InProcessBus]:
    with InProcessBus() as b:
        yield b


def serve(bus: InProcessBus, answer: Answer) -> list[wire.Frame]:
    """Serve the terminal's channel as the worker holding its bridge would: decode the
    command frame, answer with a Result or Error frame of the same id."""
    seen: list[wire.Frame] = []

    def handle(message: dict[str, Any]) -> dict[str, Any]:
        request = request_from_bus(message)
        assert isinstance(request, CommandRequest)
        seen.append(request.frame)
        return CommandReply(answer(request.frame)).to_bus()

    bus.serve(command_channel(TERMINAL), handle)
    return seen


def ok(responses: list[Response], epoch: int = 7, **extra: Any) -> Answer:
    return lambda f: wire.Result(tuple(responses), reader="R", epoch=epoch, id=f.id, **extra)


def test_a_batch_is_one_request_and_the_card_is_pinned(bus: InProcessBus) -> None:
    seen = serve(bus, ok([Response(b"", 0x9000), Response(b"", 0x9000), Response(b"", 0x63C3)]))
    remote = RemoteTransport(bus, TERMINAL)
    assert drive(jpki.read_pin_tries(), remote) == 3
    assert drive(jpki.read_pin_tries(), remote) == 3
    assert len(seen) == 2
    first, second = seen
    assert isinstance(first, wire.BatchCommand) and isinstance(second, wire.BatchCommand)
    assert first.epoch is None and second.epoch == 7 and second.reader == "R"
    assert [s.command for s in first.steps] == [s.command for s in next(jpki.read_pin_tries())]


@pytest.mark.parametrize(
    ("code", "tries", "error", "expected"),
    [
        ("no_card", None, TransportError, Code.NO_CARD),
        ("card_removed", None, TransportError, Code.CARD_REMOVED),
        ("reader_missing", None, TransportError, Code.READER_MISSING),
        ("timeout", None, TransportError, Code.TIMEOUT),
        ("bridge_offline", None, TransportError, Code.BRIDGE_OFFLINE),
        ("refused", None, CommandRefused, Code.REFUSED),
        ("pin_last_try", 1, PINGuardRefused, Code.PIN_LAST_TRY),
        ("pin_retap", 1, PINGuardRefused, Code.PIN_RETAP),
        ("pin_locked", 0, PINGuardRefused, Code.PIN_LOCKED),
        ("pin_format", None, PINFormatError, Code.PIN_FORMAT),
        ("keyboard_unavailable", None, TransportError, Code.TRANSPORT),
    ],
)
def test_errors_a_terminal_must_see(
    bus: InProcessBus, code: str, tries: int | None, error: type[CardError], expected: Code
) -> None:
    serve(bus, lambda f: wire.Error(code, "x", tries_left=tries, id=f.id))
    with pytest.raises(error) as raised:
        RemoteTransport(bus, TERMINAL).transmit([Step(jpki.select_jpki())])
    assert raised.value.code == expected
    if tries is not None:
        assert raised.value.tries_left == tries  # type: ignore[attr-defined]


def test_nobody_serving_is_bridge_offline_at_once(bus: InProcessBus) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError) as offline:
        RemoteTransport(bus, TERMINAL, timeout=5).transmit([Step(jpki.select_jpki())])
    assert offline.value.code == Code.BRIDGE_OFFLINE
    assert time.monotonic() - started < 2.5  # not its 5 s timeout (a loaded machine is slow)


def test_a_silent_worker_is_a_timeout(bus: InProcessBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webapp.terminals.remote.BUS_GRACE", 0.1)
    release = __import__("threading").Event()

    def silent(message: dict[str, Any]) -> dict[str, Any]:
        release.wait(5)
        return {}

    bus.serve(command_channel(TERMINAL), silent)
    try:
        with pytest.raises(TransportError) as late:
            RemoteTransport(bus, TERMINAL, timeout=0.2).transmit([Step(jpki.select_jpki())])
        assert late.value.code == Code.TIMEOUT
    finally:
        release.set()


@pytest.mark.parametrize(
    "reply",
    [
        {"answer": "not a frame"},
        {"answer": wire.encode(wire.Ping())},  # a frame, but not an answer
        {},
    ],
)
def test_a_malformed_answer_is_a_transport_error(bus: InProcessBus, reply: dict[str, Any]) -> None:
    bus.serve(command_channel(TERMINAL), lambda m: reply)
    with pytest.raises(TransportError) as bad:
        RemoteTransport(bus, TERMINAL).transmit([Step(jpki.select_jpki())])
    assert bad.value.code == Code.TRANSPORT


def test_more_responses_than_steps_or_another_id_are_refused(bus: InProcessBus) -> None:
    serve(bus, ok([Response(b"", 0x9000)] * 3))
    with pytest.raises(TransportError):
        RemoteTransport(bus, TERMINAL).transmit([Step(jpki.select_jpki())])
    bus.close()
    with InProcessBus() as other:
        serve(other, lambda f: wire.Result((), id="someone-else"))
        with pytest.raises(TransportError):
            RemoteTransport(other, TERMINAL).transmit([Step(jpki.select_jpki())])


def test_verify_and_type_requests(bus: InProcessBus) -> None:
    seen = serve(bus, ok([Response(b"", 0x9000)], tries_left=3))
    remote = RemoteTransport(bus, TERMINAL)
    sealed = {"v": 1, "epk": "AA", "salt": "AA", "iv": "AA", "ct": "AA"}
    outcome = remote.verify_sealed(sealed, command_id="cmd-1", confirm_last_try=True)
    assert outcome.tries_left == 3 and outcome.responses[0].sw == 0x9000
    remote.type_text("1234", suffix="tab")
    verify, typed = seen
    assert isinstance(verify, wire.VerifyCommand)
    assert verify.id == "cmd-1" and verify.confirmed and verify.epoch is None
    assert isinstance(typed, wire.TypeCommand)
    assert (typed.text, typed.suffix, typed.allowed) == ("1234", "tab", "0123456789")


@pytest.mark.parametrize(
    "sealed", [{}, {"v": True}, {"k" * 20: "x"}, {"ct": "x" * 2000}, dict.fromkeys("abcdefghi", 1)]
)
def test_a_malformed_envelope_never_reaches_the_bus(bus: InProcessBus, sealed: Any) -> None:
    seen = serve(bus, ok([]))
    with pytest.raises(CommandRefused):
        RemoteTransport(bus, TERMINAL).verify_sealed(sealed, command_id="cmd-1")
    assert seen == []


@pytest.mark.parametrize(
    "message",
    [
        {"command": "nope"},
        {"command": wire.encode(wire.Ping())},
        {"command": '{"v":1,"type":"batch","id":"x","steps":"nope"}'},
        {"command": '{"v":1,"type":"batch","id":"x","steps":[],"epoch":-1}'},
        {"status": "yes"},
        {},
    ],
)
def test_requests_are_validated_like_wire_frames(message: dict[str, Any]) -> None:
    with pytest.raises(wire.RemoteProtocolError):
        request_from_bus(message)


def test_status_request_and_reply_round_trip() -> None:
    assert isinstance(request_from_bus(StatusRequest().to_bus()), StatusRequest)
    readers = (wire.ReaderState("A"), wire.ReaderState("B", wire.CardState(b"\x3b\x00", 12)))
    reply = StatusReply("bridge-1", 7, readers, True, 1.0, 2.0)
    again = StatusReply.from_bus(reply.to_bus())
    assert again == reply and again.newest_card() == ("B", wire.CardState(b"\x3b\x00", 12))


def test_a_command_timeout_is_bounded() -> None:
    frame = wire.BatchCommand((Step(jpki.select_jpki()),))
    for asked, kept in ((10_000, 120.0), (-5, 0.1), ("soon", 10.0)):
        request = request_from_bus({"command": wire.encode(frame), "timeout": asked})
        assert isinstance(request, CommandRequest) and request.timeout == kept
