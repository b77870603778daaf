"""Limits on /ws/bridge: unauthenticated sockets per address and in all (per worker), a
short authentication deadline, and a frame rate per authenticated bridge. Excess is
closed with a wire `error` whose code the bridge understands, then a close frame; the
bridge comes back later, not at once. Raw sockets (websocket-client) against a live
platform, with a real bridge connected and serving a card meanwhile.

Addresses: the platform sits behind one proxy (PROXY_HOPS=1), so a raw socket names its
client in X-Forwarded-For; the real bridge connects without one (127.0.0.1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from bridge import client as bridge_client
from bridge import jpki, wire
from bridge.readers import SimReader
from bridge.transport import drive
from tests.support.postgres import server_engine
from tests.support.services import REDIS_URL, redis_up
from webapp.terminals import socket_limits
from webapp.terminals.testing import BridgeThread, LivePlatform

CEILING = 30.0  # seconds: only a ceiling, never a pass/fail bound
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013


def raw_socket(platform: LivePlatform, address: str | None = None) -> websocket.WebSocket:
    header = [f"X-Forwarded-For: {address}"] if address else None
    return websocket.create_connection(
        platform.url.replace("http", "ws") + "/ws/bridge", header=header, timeout=CEILING
    )


def first_frame(ws: websocket.WebSocket) -> wire.Frame:
    return wire.decode(ws.recv())


def until_closed(ws: websocket.WebSocket) -> tuple[list[wire.Frame], int | None]:
    """Every frame the platform sends until it closes, and its close code."""
    frames: list[wire.Frame] = []
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return frames, None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return frames, int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if opcode == websocket.ABNF.OPCODE_TEXT:
            frames.append(wire.decode(data.decode()))


def authenticate(platform: LivePlatform, identity: Any) -> websocket.WebSocket:
    ws = raw_socket(platform)
    challenge = first_frame(ws)
    assert isinstance(challenge, wire.Challenge)
    signature = identity.sign_challenge(platform.url, challenge.nonce)
    ws.send(wire.encode(wire.Auth(identity.bridge_id, signature)))
    assert isinstance(first_frame(ws), wire.Welcome)
    return ws


def open_many(platform: LivePlatform, count: int, address: str) -> tuple[list[Any], list[Any]]:
    """Open `count` sockets from one address without authenticating: (held, refused)."""
    held, refused = [], []
    for _ in range(count):
        ws = raw_socket(platform, address)
        frame = first_frame(ws)
        if isinstance(frame, wire.Challenge):
            held.append(ws)
            continue
        assert isinstance(frame, wire.Error) and frame.code == wire.BUSY, frame
        frames, code = until_closed(ws)
        assert frames == [] and code == CLOSE_TRY_AGAIN_LATER
        ws.shutdown()
        refused.append(frame)
    return held, refused


def close_all(sockets: list[websocket.WebSocket]) -> None:
    for ws in sockets:
        ws.shutdown()


@pytest.fixture
def platform(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LivePlatform]:
    extra = {"PROXY_HOPS": 1, **getattr(request, "param", {})}
    with LivePlatform(tmp_path, extra=extra) as live:
        yield live


def serve_a_card(platform: LivePlatform, tmp_path: Path, card_file: Any) -> BridgeThread:
    """A real bridge, connected, with a card on its reader that the platform reads."""
    identity = platform.pair_bridge(tmp_path / "bridge-home")
    bridge = BridgeThread(identity, SimReader(card_file.path), backoff_base=0.05, backoff_cap=0.2)
    bridge.start()
    platform.wait_ready(identity.terminal_id)
    certificate = drive(jpki.read_certificate(), platform.remote(identity.terminal_id))
    assert certificate[:1] == b"\x30"  # a DER certificate, read through the bridge
    return bridge


@pytest.mark.parametrize("platform", [{"BRIDGE_AUTH_TIMEOUT": 60.0}], indirect=True)
def test_one_address_cannot_hold_many_unauthenticated_sockets(
    platform: LivePlatform, tmp_path: Path, card_file: Any
) -> None:
    """200 sockets from one address: 20 are challenged, the rest refused with `busy` and
    closed (1013, try again later), while a real bridge connects and serves a card."""
    held, refused = open_many(platform, 200, "203.0.113.9")
    try:
        assert len(held) == socket_limits.PREAUTH_PER_ADDRESS == 20
        assert len(refused) == 180
        bridge = serve_a_card(platform, tmp_path, card_file)
        bridge.stop()
        assert bridge.error is None
        other, _ = open_many(platform, 1, "198.51.100.3")  # another address: challenged
        close_all(other)
    finally:
        close_all(held)


@pytest.mark.parametrize(
    "platform",
    [{"BRIDGE_AUTH_TIMEOUT": 60.0, "BRIDGE_PREAUTH_TOTAL": 12, "BRIDGE_PREAUTH_PER_ADDRESS": 5}],
    indirect=True,
)
def test_the_total_of_unauthenticated_sockets_is_capped(platform: LivePlatform) -> None:
    held: list[Any] = []
    try:
        for address in ("203.0.113.1", "203.0.113.2"):
            got, refused = open_many(platform, 6, address)
            held += got
            assert (len(got), len(refused)) == (5, 1)  # the per-address cap
        got, refused = open_many(platform, 6, "203.0.113.3")
        held += got
        assert (len(got), len(refused)) == (2, 4)  # the total: 12
        close_all(held)
        held = []
        got, _ = open_many(platform, 1, "203.0.113.4")  # closed sockets free their places
        held += got
        assert len(got) == 1
    finally:
        close_all(held)


@pytest.mark.parametrize("platform", [{"BRIDGE_AUTH_TIMEOUT": 0.5}], indirect=True)
def test_a_socket_that_does_not_authenticate_in_time_is_closed_with_a_reason(
    platform: LivePlatform,
) -> None:
    ws = raw_socket(platform, "203.0.113.5")
    try:
        assert isinstance(first_frame(ws), wire.Challenge)
        frames, code = until_closed(ws)  # we say nothing
        assert [(f.code if isinstance(f, wire.Error) else f) for f in frames] == [wire.AUTH_TIMEOUT]
        assert code == CLOSE_POLICY_VIOLATION
    finally:
        ws.shutdown()


def test_the_authentication_deadline_is_short_by_default(platform: LivePlatform) -> None:
    assert platform.app.config["BRIDGE_AUTH_TIMEOUT"] == socket_limits.AUTH_TIMEOUT == 5.0


def test_a_bridge_flooding_frames_is_cut_off_others_are_not(
    platform: LivePlatform, tmp_path: Path, card_file: Any
) -> None:
    """An authenticated bridge that sends 200 pings at once gets `rate_limited` and a
    close (1008); a well-behaved bridge beside it stays on its first connection."""
    bridge = serve_a_card(platform, tmp_path, card_file)
    flooder = authenticate(platform, platform.pair_bridge(tmp_path / "flooder-home"))
    try:
        for _ in range(200):
            try:
                flooder.send(wire.encode(wire.Ping()))
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                break  # cut off already
        frames, code = until_closed(flooder)
        errors = [f for f in frames if isinstance(f, wire.Error)]
        pongs = [f for f in frames if isinstance(f, wire.Pong)]
        assert [e.code for e in errors] == [wire.RATE_LIMITED]
        assert code == CLOSE_POLICY_VIOLATION
        assert socket_limits.FRAME_BURST <= len(pongs) < 200
        assert drive(jpki.read_certificate(), platform.remote(bridge.identity.terminal_id))
        assert bridge.client.connections == 1 and bridge.error is None
    finally:
        flooder.shutdown()
        bridge.stop()


@pytest.mark.parametrize("platform", [{"BRIDGE_PREAUTH_TOTAL": 0}], indirect=True)
def test_a_bridge_refused_for_load_waits_longer_then_connects(
    platform: LivePlatform, tmp_path: Path, card_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the platform sheds load, a bridge's every wait is from the upper half of its
    back-off range (never an immediate retry), it does not give up (no "pair again"),
    and it connects once there is room."""
    chosen: list[tuple[int, bool, float]] = []
    refused_twice = threading.Event()
    real = bridge_client.backoff_delay

    def recording(attempt: int, *, base: float, cap: float, refused: bool = False) -> float:
        delay = real(attempt, base=base, cap=cap, refused=refused)
        chosen.append((attempt, refused, delay))
        if sum(1 for _, r, _ in chosen if r) >= 2:
            refused_twice.set()
        return delay

    monkeypatch.setattr(bridge_client, "backoff_delay", recording)
    identity = platform.pair_bridge(tmp_path / "bridge-home")
    bridge = BridgeThread(identity, SimReader(card_file.path), backoff_base=0.01, backoff_cap=0.6)
    bridge.start(wait=0)
    try:
        assert refused_twice.wait(CEILING)
        assert all(refused and 0.3 <= delay <= 0.6 for _, refused, delay in chosen), chosen
        assert bridge.client.connections == 0 and bridge.error is None
        socket_limits.get_gate(platform.app).total = 500  # room again
        assert bridge.client.connected.wait(CEILING)
        platform.wait_ready(identity.terminal_id)
    finally:
        bridge.stop()
    assert bridge.error is None


@pytest.fixture
def scaled(tmp_path: Path) -> Iterator[LivePlatform]:
    with server_engine():
        pass  # skips (or fails under CI) without PostgreSQL
    if not redis_up():
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    extra = {"PROXY_HOPS": 1, "BRIDGE_AUTH_TIMEOUT": 60.0}
    with LivePlatform(tmp_path, deployment="scaled", extra=extra) as live:
        yield live


def test_the_caps_hold_per_worker(scaled: LivePlatform, tmp_path: Path, card_file: Any) -> None:
    """On four gevent workers each holds its own sockets: one address gets at most 20
    unauthenticated sockets on each (80 in all), and a real bridge still connects."""
    held, refused = open_many(scaled, 200, "203.0.113.9")
    try:
        assert socket_limits.PREAUTH_PER_ADDRESS <= len(held) <= 4 * 20
        assert len(held) + len(refused) == 200
        bridge = serve_a_card(scaled, tmp_path, card_file)
        bridge.stop()
        assert bridge.error is None
    finally:
        close_all(held)
