"""Terminals and their bridges: pairing, the bridges' WebSocket, the remote transport.

`init_app(app)` registers the JSON API and the /ws/bridge endpoint, and makes this
worker's registry of connected bridges, its gate of unauthenticated bridge sockets
(socket_limits.py) and the pairing throttle (once, here: every worker process builds
its own app, so nothing is shared across a fork).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from bridge import wire

from ..throttle import app_limiter, setting
from . import socket_limits, throttle
from .registry import BridgeRegistry
from .throttle import PairingThrottle

DEFAULT_PING_INTERVAL = 25.0
DEFAULT_FLUSH_INTERVAL = 15.0


def init_app(app: Flask) -> None:
    """Register the terminals API and the bridge WebSocket; make the registry and throttle."""
    from .. import bus
    from ..sockets import sock
    from . import admin_views, api_views, bridge_socket, download_views, models  # noqa: F401
    from .cli import bridge_cli

    if "bus" not in app.extensions:
        bus.init_app(app)
    app.config.setdefault("BRIDGE_PING_INTERVAL", DEFAULT_PING_INTERVAL)
    app.config.setdefault("BRIDGE_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL)
    # simple-websocket refuses a larger message before buffering it (wire's bound).
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": wire.MAX_FRAME_BYTES})
    socket_limits.init_app(app)  # /ws/bridge: sockets before authentication, frame rate
    app.extensions["bridge_registry"] = BridgeRegistry(
        app,
        bus.get_bus(app),
        ping_interval=float(app.config["BRIDGE_PING_INTERVAL"]),
        flush_interval=float(app.config["BRIDGE_FLUSH_INTERVAL"]),
    )
    app.extensions["bridge_pair_throttle"] = PairingThrottle(
        app_limiter(app.extensions, app.config),
        per_ip=setting(app.config, "PAIR_LIMIT_PER_IP", throttle.PER_IP),
        overall=setting(app.config, "PAIR_LIMIT_OVERALL", throttle.OVERALL),
    )
    app.register_blueprint(api_views.bp)
    app.register_blueprint(bridge_socket.bp)
    app.register_blueprint(download_views.bp)  # /bridge/: the bridge's wheel, how to install
    app.cli.add_command(bridge_cli)
    if "staff" in app.blueprints:  # the admin pages need staff sign-in
        app.register_blueprint(admin_views.bp)
    sock.init_app(app)
    try:
        from ..staff.security import csrf_exempt
    except ImportError:  # staff (CSRF) not installed in this app
        pass
    else:
        csrf_exempt(api_views.bp)


def get_registry(app: Flask) -> BridgeRegistry:
    """This worker's registry of connected bridges (made by `init_app`)."""
    registry: BridgeRegistry = app.extensions["bridge_registry"]
    return registry


def online_window(app: Flask) -> timedelta:
    """How fresh last-seen must be for a bridge to count as online (3 flushes)."""
    return timedelta(seconds=3 * float(app.config["BRIDGE_FLUSH_INTERVAL"]))
