"""Terminals and their bridges: pairing, the bridges' WebSocket, the remote transport.

`init_app(app)` registers the JSON API, the /ws/bridge endpoint and (lazily, per
worker process) the registry of connected bridges.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask

from bridge import wire

from .registry import BridgeRegistry

_lock = threading.Lock()

DEFAULT_PING_INTERVAL = 25.0
DEFAULT_FLUSH_INTERVAL = 15.0


def init_app(app: Flask) -> None:
    """Register the terminals API and the bridge WebSocket; make the bus if none yet."""
    from .. import bus
    from ..views import bridge_ws, terminals_api
    from . import admin_views, models  # noqa: F401 - the tables

    if "bus" not in app.extensions:
        bus.init_app(app)
    app.config.setdefault("BRIDGE_PING_INTERVAL", DEFAULT_PING_INTERVAL)
    app.config.setdefault("BRIDGE_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL)
    # simple-websocket refuses a larger message before buffering it (wire's bound).
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": wire.MAX_FRAME_BYTES})
    app.register_blueprint(terminals_api.bp)
    app.register_blueprint(bridge_ws.bp)
    if "staff" in app.blueprints:  # the admin pages need staff sign-in
        app.register_blueprint(admin_views.bp)
    bridge_ws.sock.init_app(app)
    try:
        from ..staff.security import csrf_exempt
    except ImportError:  # staff (CSRF) not installed in this app
        pass
    else:
        csrf_exempt(terminals_api.bp)


def get_registry(app: Flask) -> BridgeRegistry:
    """This worker's registry of connected bridges (made on first use, after any fork)."""
    registry: BridgeRegistry | None = app.extensions.get("bridge_registry")
    if registry is None:
        from ..bus import get_bus

        # The registry's threads outlive requests: hold the app, not the proxy.
        app = getattr(app, "_get_current_object", lambda: app)()

        with _lock:
            registry = app.extensions.get("bridge_registry")
            if registry is None:
                registry = BridgeRegistry(
                    app,
                    get_bus(app),
                    ping_interval=float(app.config["BRIDGE_PING_INTERVAL"]),
                    flush_interval=float(app.config["BRIDGE_FLUSH_INTERVAL"]),
                )
                app.extensions["bridge_registry"] = registry
    return registry


def online_window(app: Flask) -> timedelta:
    """How fresh last-seen must be for a bridge to count as online (3 flushes)."""
    return timedelta(seconds=3 * float(app.config["BRIDGE_FLUSH_INTERVAL"]))
