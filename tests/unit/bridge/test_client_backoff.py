"""The bridge's reconnect back-off: full jitter, a longer wait after a refusal for load,
and only a refused pairing ends it (bridge/client.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
import websocket

from bridge import wire
from bridge.client import AuthRefused, BridgeClient, PlatformBusy, _Connection, backoff_delay


class FakeSocket:
    """Hands out the given frames, then times out."""

    def __init__(self, *frames: wire.Frame) -> None:
        self.frames = [wire.encode(f) for f in frames]
        self.sent: list[str] = []

    def recv(self) -> str:
        return self.frames.pop(0)

    def recv_data(self) -> tuple[int, bytes]:
        return websocket.ABNF.OPCODE_TEXT, self.recv().encode()

    def send(self, text: str) -> None:
        self.sent.append(text)

    def settimeout(self, seconds: float) -> None:
        pass


class RecordedStop(threading.Event):
    """`stopping` that records each back-off wait instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        return self.is_set()


def client(**options: Any) -> BridgeClient:
    identity = SimpleNamespace(
        platform="http://127.0.0.1:5000",
        bridge_id="brg_test",
        sign_challenge=lambda origin, nonce: b"s" * 64,
    )
    return BridgeClient(identity, SimpleNamespace(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("attempt", [0, 1, 3, 6, 10, 100, 5000])
def test_full_jitter_up_to_the_cap(attempt: int) -> None:
    """Also after hours of failures: 0.5 x 2**5000 is no float (it once ended the bridge)."""
    for _ in range(200):
        delay = backoff_delay(attempt, base=0.5, cap=30.0)
        assert 0 <= delay <= min(30.0, 0.5 * 2 ** min(attempt, 10))


def test_a_refusal_for_load_waits_the_upper_half() -> None:
    delays = [backoff_delay(0, base=0.5, cap=30.0, refused=True) for _ in range(500)]
    assert min(delays) >= 15.0 and max(delays) <= 30.0


@pytest.mark.parametrize("code", [wire.BUSY, wire.AUTH_TIMEOUT, wire.RATE_LIMITED])
def test_load_codes_in_the_handshake_are_no_reason_to_pair_again(code: str) -> None:
    before = FakeSocket(wire.Error(code, "later"))
    with pytest.raises(PlatformBusy):
        client()._handshake(_Connection(before))
    after = FakeSocket(wire.Challenge(b"n" * wire.NONCE_BYTES), wire.Error(code, "later"))
    with pytest.raises(PlatformBusy):
        client()._handshake(_Connection(after))


@pytest.mark.parametrize("code", ["unauthorized", "revoked"])
def test_a_refused_pairing_ends_the_client(code: str) -> None:
    socket = FakeSocket(wire.Challenge(b"n" * wire.NONCE_BYTES), wire.Error(code, "no"))
    with pytest.raises(AuthRefused):
        client()._handshake(_Connection(socket))


def test_another_error_in_the_handshake_is_retried() -> None:
    socket = FakeSocket(wire.Challenge(b"n" * wire.NONCE_BYTES), wire.Error("transport", "?"))
    with pytest.raises(ConnectionError):
        client()._handshake(_Connection(socket))


def test_being_cut_off_for_frames_is_a_refusal_for_load() -> None:
    connection = _Connection(FakeSocket(wire.Pong(), wire.Error(wire.RATE_LIMITED, "slow")))
    with pytest.raises(PlatformBusy):
        client()._serve(connection, ping_interval=25.0)


def test_run_forever_waits_longer_after_each_refusal_and_never_gives_up_on_one() -> None:
    bridge = client(backoff_base=0.5, backoff_cap=30.0)
    bridge.stopping = RecordedStop()
    outcomes: list[BaseException] = [
        PlatformBusy(wire.BUSY, "later"),
        ConnectionError("dropped"),
        PlatformBusy(wire.BUSY, "later"),
        AuthRefused("revoked", "pair again"),
    ]

    def run_once() -> None:
        raise outcomes.pop(0)

    bridge.run_once = run_once  # type: ignore[method-assign]
    with pytest.raises(AuthRefused):
        bridge.run_forever()
    busy, dropped, busy_again = bridge.stopping.waits
    assert 15.0 <= busy <= 30.0 and 15.0 <= busy_again <= 30.0
    assert 0 <= dropped <= 0.5 * 2**1


def test_hours_of_failed_connections_do_not_end_the_client() -> None:
    """1,100 failures in a row (some 4 hours at 15 s each): still backing off."""
    bridge = client(backoff_base=0.5, backoff_cap=30.0)
    bridge.stopping = RecordedStop()
    failures = iter(range(1100))

    def run_once() -> None:
        if next(failures, None) is None:
            raise AuthRefused("revoked", "the end of the test")
        raise ConnectionError("the platform is unreachable")

    bridge.run_once = run_once  # type: ignore[method-assign]
    with pytest.raises(AuthRefused):
        bridge.run_forever()
    assert len(bridge.stopping.waits) == 1100
    assert max(bridge.stopping.waits) <= 30.0


class ClosingSocket(FakeSocket):
    """Closes with `code` after the welcome, as a stopping platform worker does."""

    def __init__(self, code: int, *frames: wire.Frame) -> None:
        super().__init__(*frames)
        self.code = code

    def recv_data(self) -> tuple[int, bytes]:
        if self.frames:
            return super().recv_data()
        return websocket.ABNF.OPCODE_CLOSE, self.code.to_bytes(2, "big") + b"going away"


def test_a_going_away_close_is_told_apart() -> None:
    """A worker that stops closes with 1001: the bridge knows (and logs it)."""
    from bridge.client import CLOSE_GOING_AWAY, PlatformClosed

    bridge = client()
    conn = _Connection(ClosingSocket(CLOSE_GOING_AWAY))
    with pytest.raises(PlatformClosed) as closed:
        bridge._recv(conn)
    assert closed.value.code == CLOSE_GOING_AWAY
    assert bridge.last_close_code == CLOSE_GOING_AWAY


def test_with_the_defaults_a_failure_waits_under_10_s_and_a_refusal_15_to_30() -> None:
    """docs/faults.md: a bridge is back within 10 s of the platform (the connection itself
    takes well under the 2 s left); shedding load still sends the refused away longer."""
    bridge = client()
    bridge.stopping = RecordedStop()
    outcomes: list[BaseException] = [ConnectionError("down")] * 200
    outcomes += [PlatformBusy(wire.BUSY, "later"), AuthRefused("revoked", "the end")]

    def run_once() -> None:
        raise outcomes.pop(0)

    bridge.run_once = run_once  # type: ignore[method-assign]
    with pytest.raises(AuthRefused):
        bridge.run_forever()
    *failures, refused = bridge.stopping.waits
    assert max(failures) <= 8.0 and max(failures) > 4.0  # reaches the cap, never past it
    assert 15.0 <= refused <= 30.0
