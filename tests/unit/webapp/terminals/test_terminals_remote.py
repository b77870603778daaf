"""RemoteTransport over a real in-process bus, with a stand-in for the worker holding the bridge."""

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
from webapp.terminals.registry import command_channel, command_frame
from webapp.terminals.remote import RemoteTransport

TERMINAL = 42


@pytest.fixture
def bus() -> Iterator[InProcessBus]:
    with InProcessBus() as b:
        yield b


def serve(
    bus: InProcessBus, handler: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def record(message: dict[str, Any]) -> dict[str, Any]:
        seen.append(message)
        return handler(message)

    bus.serve(command_channel(TERMINAL), record)
    return seen


def ok(responses: list[Response], epoch: int = 7) -> dict[str, Any]:
    return {
        "ok": True,
        "responses": wire.responses_to_json(responses),
        "reader": "R",
        "epoch": epoch,
    }


def test_a_batch_is_one_request_and_the_card_is_pinned(bus: InProcessBus) -> None:
    seen = serve(
        bus, lambda m: ok([Response(b"", 0x9000), Response(b"", 0x9000), Response(b"", 0x63C3)])
    )
    remote = RemoteTransport(bus, TERMINAL)
    assert drive(jpki.read_pin_tries(), remote) == 3
    assert drive(jpki.read_pin_tries(), remote) == 3
    assert len(seen) == 2
    assert "epoch" not in seen[0] and seen[1]["epoch"] == 7 and seen[1]["reader"] == "R"
    assert [s.command for s in wire.steps_from_json(seen[0]["steps"])] == [
        s.command for s in next(jpki.read_pin_tries())
    ]


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        ({"code": "no_card"}, TransportError, Code.NO_CARD),
        ({"code": "card_removed"}, TransportError, Code.CARD_REMOVED),
        ({"code": "reader_missing"}, TransportError, Code.READER_MISSING),
        ({"code": "timeout"}, TransportError, Code.TIMEOUT),
        ({"code": "bridge_offline"}, TransportError, Code.BRIDGE_OFFLINE),
        ({"code": "refused"}, CommandRefused, Code.REFUSED),
        ({"code": "pin_last_try", "tries_left": 1}, PINGuardRefused, Code.PIN_LAST_TRY),
        ({"code": "pin_locked", "tries_left": 0}, PINGuardRefused, Code.PIN_LOCKED),
        ({"code": "pin_format"}, PINFormatError, Code.PIN_FORMAT),
        ({"code": "keyboard_unavailable"}, TransportError, Code.TRANSPORT),
    ],
)
def test_errors_a_terminal_must_see(
    bus: InProcessBus, reply: dict[str, Any], error: type[CardError], code: Code
) -> None:
    serve(bus, lambda m: {"ok": False, "message": "x", **reply})
    with pytest.raises(error) as raised:
        RemoteTransport(bus, TERMINAL).transmit([Step(jpki.select_jpki())])
    assert raised.value.code == code


def test_nobody_serving_is_bridge_offline_at_once(bus: InProcessBus) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError) as offline:
        RemoteTransport(bus, TERMINAL, timeout=5).transmit([Step(jpki.select_jpki())])
    assert offline.value.code == Code.BRIDGE_OFFLINE
    assert time.monotonic() - started < 0.5


def test_a_silent_worker_is_a_timeout(bus: InProcessBus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("webapp.terminals.remote.BUS_GRACE", 0.1)
    serve(bus, lambda m: (time.sleep(1.0), ok([]))[1])
    with pytest.raises(TransportError) as late:
        RemoteTransport(bus, TERMINAL, timeout=0.2).transmit([Step(jpki.select_jpki())])
    assert late.value.code == Code.TIMEOUT


@pytest.mark.parametrize(
    "reply",
    [
        {"ok": True, "responses": [{"data": "", "sw": 36864}] * 3},  # more than sent
        {"ok": True, "responses": [{"data": "!", "sw": 36864}]},
        {"ok": True},
    ],
)
def test_a_malformed_answer_is_a_transport_error(bus: InProcessBus, reply: dict[str, Any]) -> None:
    serve(bus, lambda m: reply)
    with pytest.raises(TransportError) as bad:
        RemoteTransport(bus, TERMINAL).transmit([Step(jpki.select_jpki())])
    assert bad.value.code == Code.TRANSPORT


def test_verify_and_type_requests(bus: InProcessBus) -> None:
    seen = serve(bus, lambda m: {**ok([Response(b"", 0x9000)]), "tries_left": 3})
    remote = RemoteTransport(bus, TERMINAL)
    outcome = remote.verify_sealed({"v": 1}, command_id="cmd-1", confirm_last_try=True)
    assert outcome.tries_left == 3 and outcome.responses[0].sw == 0x9000
    remote.type_text("1234", suffix="tab")
    assert seen[0]["op"] == "verify" and seen[0]["id"] == "cmd-1" and seen[0]["confirmed"] is True
    assert seen[1] == {
        "op": "type",
        "text": "1234",
        "suffix": "tab",
        "allowed": "0123456789",
        "timeout": 10.0,
        "reader": "R",
        "epoch": 7,
    }


@pytest.mark.parametrize(
    "message",
    [
        {"op": "launch"},
        {"op": "batch", "steps": "nope"},
        {"op": "batch", "steps": [], "epoch": -1},
        {"op": "verify", "sealed": {}},
        {"op": "type", "text": "1", "suffix": "escape"},
    ],
)
def test_command_frames_are_validated_like_wire_frames(message: dict[str, Any]) -> None:
    with pytest.raises(wire.RemoteProtocolError):
        command_frame(message)


def test_command_frame_keeps_the_sealed_command_id() -> None:
    frame = command_frame({"op": "verify", "id": "cmd-9", "sealed": {"v": 1}, "confirmed": True})
    assert isinstance(frame, wire.VerifyCommand) and frame.id == "cmd-9" and frame.confirmed
