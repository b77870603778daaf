"""The message bus: one interface (`Bus`), in-process or Redis, picked by URL.

`make_bus("memory://")` is the embedded default; `make_bus("redis://host:6379/0")`
joins workers on several processes or machines. Callers depend on `Bus` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .codec import DEFAULT_MAX_BYTES
from .interfaces import (
    BadMessage,
    Bus,
    BusClosed,
    BusError,
    BusHandlerError,
    BusTimeout,
    Callback,
    Handler,
    Message,
    NoServer,
    Subscription,
)
from .memory import InProcessBus

if TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BadMessage",
    "Bus",
    "BusClosed",
    "BusError",
    "BusHandlerError",
    "BusTimeout",
    "Callback",
    "Handler",
    "InProcessBus",
    "Message",
    "NoServer",
    "Subscription",
    "get_bus",
    "init_app",
    "make_bus",
]


def make_bus(url: str, **options: Any) -> Bus:
    """The bus for `url`: memory:// (in-process) or redis:// / rediss:// (Redis)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return InProcessBus(**options)
    if scheme in ("redis", "rediss", "unix"):
        from .redis_bus import RedisBus  # redis is an optional dependency

        return RedisBus(url, **options)
    raise ValueError(f"unknown bus URL scheme: {scheme!r}")


def init_app(app: Flask) -> None:
    """Create the app's bus from BUS_URL (closed at interpreter exit)."""
    import atexit

    bus = make_bus(app.config.get("BUS_URL", "memory://"))
    app.extensions["bus"] = bus
    atexit.register(bus.close)


def get_bus(app: Flask) -> Bus:
    """The bus `init_app` made for this app."""
    bus: Bus = app.extensions["bus"]
    return bus
