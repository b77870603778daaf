"""The bridges' WebSocket (/ws/bridge): challenge-response, then the registry takes over.

Thin: the handshake checks the bridge's signature over a fresh nonce (services), and
the connection's frames are handled by `terminals.registry.BridgeConnection`.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, current_app
from flask_sock import Sock

from bridge import wire

from .. import db
from ..terminals import get_registry, services
from ..terminals.errors import BridgeAuthError
from ..terminals.registry import BridgeConnection

log = logging.getLogger(__name__)

bp = Blueprint("bridge_ws", __name__)
sock = Sock()

# How long a bridge has to answer the challenge.
AUTH_TIMEOUT = 10.0
# A bridge silent for this many ping intervals is gone (its TCP may hang for minutes).
DEAD_AFTER = 2.5


def _handshake(ws: Any, origin: str) -> tuple[str, int] | None:
    """Challenge the bridge; its (bridge id, terminal id), or None after an error frame."""
    nonce = secrets.token_bytes(wire.NONCE_BYTES)
    ws.send(wire.encode(wire.Challenge(nonce)))
    text = ws.receive(timeout=AUTH_TIMEOUT)
    if text is None:
        return None
    try:
        frame = wire.decode(text)
    except wire.ProtocolError as exc:
        ws.send(wire.encode(wire.Error("transport", f"protocol error: {exc}"[:200])))
        return None
    if not isinstance(frame, wire.Auth):
        ws.send(wire.encode(wire.Error("unauthorized", "expected auth")))
        return None
    try:
        with db.new_session() as s:
            device = services.authenticate(s, frame.bridge_id, origin, nonce, frame.signature)
            found = (device.id, device.terminal_id)
    except BridgeAuthError as exc:
        log.info("bridge authentication refused: %s", exc.code)
        ws.send(wire.encode(wire.Error(exc.code, str(exc))))
        return None
    return found


@sock.route("/ws/bridge", bp=bp)  # type: ignore[untyped-decorator]
def bridge_socket(ws: Any) -> None:
    """One bridge's connection, from challenge to close."""
    registry = get_registry(current_app)
    found = _handshake(ws, current_app.config["PLATFORM_ORIGIN"])
    if found is None:
        return
    bridge_id, terminal_id = found
    ws.send(wire.encode(wire.Welcome(bridge_id, terminal_id, registry.ping_interval)))
    conn = BridgeConnection(ws, bridge_id, terminal_id, registry)
    registry.attach(conn)
    try:
        while not conn.closed:
            text = ws.receive(timeout=registry.ping_interval * DEAD_AFTER)
            if text is None:
                log.info("bridge %s went silent; closing", bridge_id)
                break
            try:
                conn.on_frame(wire.decode(text))
            except wire.ProtocolError as exc:
                conn.send(wire.Error("transport", f"protocol error: {exc}"[:200]))
                break
    finally:
        registry.detach(conn)
