"""The bridges' WebSocket (/ws/bridge): challenge-response, then the registry takes over.

Thin: the handshake checks the bridge's signature over a fresh nonce (services), and
the connection's frames are handled by `terminals.registry.BridgeConnection`. The
limits (terminals/socket_limits.py) are kept here: a place among this worker's
unauthenticated sockets before the challenge, a deadline for the answer, and a token
bucket over what an authenticated bridge sends of its own accord. Excess is told with a
wire `error` the bridge understands, then the socket is closed.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from flask import Blueprint, current_app, request
from simple_websocket import ConnectionClosed

from bridge import wire

from .. import db
from ..ops import events
from ..ops.going_away import GOING_AWAY, held, leaving
from ..sockets import sock
from ..throttle import client_key
from . import get_registry, services
from .errors import BridgeAuthError
from .registry import BridgeConnection
from .socket_limits import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    frame_bucket,
    get_gate,
)

log = logging.getLogger(__name__)

bp = Blueprint("bridge_ws", __name__)

# RFC 6455 section 7.4.1: the peer sent a frame that breaks the protocol.
CLOSE_PROTOCOL_ERROR = 1002
# A bridge silent for this many ping intervals is gone (its TCP may hang for minutes).
DEAD_AFTER = 2.5


def _refuse(ws: Any, code: str, message: str, close_code: int) -> None:
    """Tell the bridge why (a wire error it understands), then close the socket."""
    try:
        ws.send(wire.encode(wire.Error(code, message[: wire.MAX_MESSAGE])))
        ws.close(reason=close_code, message=code)
    except Exception:
        log.debug("refusing a bridge socket failed", exc_info=True)


Found = tuple[str, int, int | None, str]  # bridge id, terminal id, provider id, terminal kind


def _handshake(ws: Any, origin: str, deadline: float) -> Found | None:
    """Challenge the bridge; who it is (`Found`), or None after an error frame."""
    nonce = secrets.token_bytes(wire.NONCE_BYTES)
    ws.send(wire.encode(wire.Challenge(nonce)))
    text = ws.receive(timeout=deadline)
    if text is None:
        _refuse(ws, wire.AUTH_TIMEOUT, "no answer to the challenge", CLOSE_POLICY_VIOLATION)
        return None
    try:
        frame = wire.decode(text)  # bounded: size, depth (bridge/wire.py)
    except wire.ProtocolError as exc:
        _refuse(ws, "transport", f"protocol error: {exc}", CLOSE_PROTOCOL_ERROR)
        return None
    if not isinstance(frame, wire.Auth):
        ws.send(wire.encode(wire.Error("unauthorized", "expected auth")))
        return None
    try:
        with db.new_session() as s:
            device = services.authenticate(s, frame.bridge_id, origin, nonce, frame.signature)
            terminal = device.terminal
            found = (device.id, device.terminal_id, terminal.provider_id, terminal.kind)
    except BridgeAuthError as exc:
        events.emit("bridge_refused", code=exc.code)
        ws.send(wire.encode(wire.Error(exc.code, str(exc))))
        return None
    return found


def _admitted_handshake(ws: Any) -> Found | None:
    """The handshake, in one of this worker's places for unauthenticated sockets."""
    gate, address = get_gate(current_app), client_key(request.remote_addr)
    if not gate.enter(address):
        log.info("bridge socket from %s refused: too many waiting to authenticate", address)
        _refuse(ws, wire.BUSY, "too many connections: try again later", CLOSE_TRY_AGAIN_LATER)
        return None
    try:
        config = current_app.config
        return _handshake(ws, config["PLATFORM_ORIGIN"], float(config["BRIDGE_AUTH_TIMEOUT"]))
    finally:
        gate.leave(address)


@sock.route("/ws/bridge", bp=bp)  # type: ignore[untyped-decorator]
def bridge_socket(ws: Any) -> None:
    """One bridge's connection, from challenge to close (1001 when this worker stops)."""
    with held(ws) as serving:
        if serving:
            _serve_bridge(ws)


def _serve_bridge(ws: Any) -> None:
    registry = get_registry(current_app)
    found = _admitted_handshake(ws)
    if found is None:
        return
    bridge_id, terminal_id, provider_id, kind = found
    ws.send(wire.encode(wire.Welcome(bridge_id, terminal_id, registry.ping_interval)))
    conn = BridgeConnection(ws, bridge_id, terminal_id, registry, kind=kind)
    bucket = frame_bucket(current_app)
    registry.attach(conn)
    events.bridge_connected(bridge_id, terminal=terminal_id, provider=provider_id)
    why = "closed"
    try:
        while not conn.closed:
            text = ws.receive(timeout=registry.ping_interval * DEAD_AFTER)
            if text is None:
                log.info("bridge %s went silent; closing", bridge_id)
                why = "silent"
                break
            try:
                frame = wire.decode(text)
            except wire.ProtocolError as exc:
                conn.send(wire.Error("transport", f"protocol error: {exc}"[:200]))
                conn.close("transport: malformed frame", code=CLOSE_PROTOCOL_ERROR)
                why = "protocol_error"
                break
            if not conn.answers(frame) and not bucket.take():
                log.warning("bridge %s sent frames too fast; closing", bridge_id)
                conn.send(wire.Error(wire.RATE_LIMITED, "too many frames: try again later"))
                conn.close(wire.RATE_LIMITED, code=CLOSE_POLICY_VIOLATION)
                why = "rate_limited"
                break
            try:
                conn.on_frame(frame)
            except wire.ProtocolError as exc:
                conn.send(wire.Error("transport", f"protocol error: {exc}"[:200]))
                conn.close("transport: malformed frame", code=CLOSE_PROTOCOL_ERROR)
                why = "protocol_error"
                break
    except ConnectionClosed:  # the bridge (or going_away) closed the socket
        why = "closed"
    finally:
        if leaving():
            why = "going_away"
            conn.close("going away", code=GOING_AWAY)
        elif conn.superseded:
            why = "superseded"
        registry.detach(conn)
        events.bridge_disconnected(
            bridge_id,
            terminal=terminal_id,
            provider=provider_id,
            seconds=time.time() - conn.connected_at,
            why=why,
        )
