"""Bounded frames on the WebSockets: JSON nested deeper than the wire allows, as the first
(unauthenticated) frame on /ws/bridge or later from an authenticated bridge, is answered
with a wire `error` and a close frame with a code and a reason (1002, protocol error),
never an exception out of the frame decoder. A browser tab's /ws/terminal takes no frames
at all: one that sends some is closed the same way. Raw sockets against a live platform.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from bridge import wire
from bridge.vcard.cardfile import CardFile, card_data_from_issued
from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.cardflow import Kiosk, db_session, kiosk
from webapp.terminals.models import TerminalKind
from webapp.terminals.testing import LivePlatform

__all__ = ["db_session", "kiosk"]

CEILING = 30.0  # seconds: only a ceiling, never a pass/fail bound
CLOSE_PROTOCOL_ERROR = 1002
DEEP = [
    "[" * 50_000,  # 50 KB, within the 64 KiB frame bound; never closed
    "[" * 30_000 + "]" * 30_000,  # 60 KB, well formed
    '{"v": 1, "type": "auth", "x": ' + "[" * 20 + "]" * 20 + "}",  # just past the bound
]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LivePlatform]:
    with LivePlatform(tmp_path) as live:
        yield live


def connect(url: str, path: str, **options: Any) -> websocket.WebSocket:
    return websocket.create_connection(
        url.replace("http", "ws", 1) + path, timeout=CEILING, **options
    )


def until_closed(ws: websocket.WebSocket) -> tuple[list[str], int | None, str]:
    """Every text frame until the platform closes, its close code and its reason (no code
    if it has not closed within the ceiling: a tab's socket sends keep-alives forever)."""
    frames: list[str] = []
    deadline = time.monotonic() + CEILING
    while time.monotonic() < deadline:
        try:
            opcode, data = ws.recv_data(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return frames, None, ""
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            if len(data) < 2:
                return frames, None, ""
            return frames, int.from_bytes(data[:2], "big"), data[2:].decode()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            frames.append(data.decode())
    return frames, None, ""


@pytest.mark.parametrize("text", DEEP, ids=["open-50000", "balanced-30000", "depth-21"])
def test_a_deep_first_frame_closes_the_bridge_socket_with_a_reason(
    platform: LivePlatform, text: str
) -> None:
    ws = connect(platform.url, "/ws/bridge")
    try:
        assert isinstance(wire.decode(ws.recv()), wire.Challenge)
        ws.send(text)
        frames, code, reason = until_closed(ws)
    finally:
        ws.shutdown()
    (error,) = [wire.decode(f) for f in frames]
    assert isinstance(error, wire.Error) and error.code == "transport"
    assert "deeper" in error.message
    assert (code, reason) == (CLOSE_PROTOCOL_ERROR, "transport")


def test_a_deep_frame_from_an_authenticated_bridge_closes_its_socket(
    platform: LivePlatform, tmp_path: Path
) -> None:
    identity = platform.pair_bridge(tmp_path / "bridge-home")
    ws = connect(platform.url, "/ws/bridge")
    try:
        challenge = wire.decode(ws.recv())
        assert isinstance(challenge, wire.Challenge)
        signature = identity.sign_challenge(platform.url, challenge.nonce)
        ws.send(wire.encode(wire.Auth(identity.bridge_id, signature)))
        assert isinstance(wire.decode(ws.recv()), wire.Welcome)
        ws.send("[" * 30_000 + "]" * 30_000)
        frames, code, reason = until_closed(ws)
    finally:
        ws.shutdown()
    errors = [f for f in map(wire.decode, frames) if isinstance(f, wire.Error)]
    assert [e.code for e in errors] == ["transport"]
    assert code == CLOSE_PROTOCOL_ERROR and reason.startswith("transport")


def test_a_tab_that_sends_frames_is_closed(
    kiosk: Kiosk, demo_jlis: DemoJLIS, tmp_path: Path
) -> None:
    client = kiosk.platform.app.test_client()
    with client.session_transaction() as session:
        session["terminal_id"] = kiosk.terminal_id
        session["terminal_kind"] = TerminalKind.KIOSK
    cookie = client.get_cookie("session")
    assert cookie is not None
    ws = connect(kiosk.platform.url, "/ws/terminal", cookie=f"session={cookie.value}")
    try:
        assert json.loads(ws.recv())["type"] == "status"
        ws.send("[" * 50_000)
        path = tmp_path / "card.json"
        CardFile.create(
            path, card_data_from_issued(demo_jlis.issue(), pin="1234", sign_password="ABC123")
        )
        kiosk.insert(path)  # the bridge connects: an event wakes the tab's socket
        _frames, code, reason = until_closed(ws)
    finally:
        ws.shutdown()
    assert (code, reason) == (CLOSE_PROTOCOL_ERROR, "this socket takes no frames")
