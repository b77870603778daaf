"""The message bus: one interface (`Bus`), in-process or Redis, picked by URL.

`make_bus("memory://")` is the embedded default; `make_bus("redis://host:6379/0")`
joins workers on several processes or machines. Callers depend on `Bus` only.
"""

from __future__ import annotations

import logging
import time
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

log = logging.getLogger(__name__)

# Seconds an app waits at start-up for an unreachable Redis (a restart takes a few) before
# it gives up; well inside gunicorn's boot timeout. Setting BUS_CONNECT_WAIT.
BUS_CONNECT_WAIT = 20.0

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
    """Create the app's bus from BUS_URL (and BUS_PREFIX; closed at interpreter exit)."""
    import atexit

    url = app.config.get("BUS_URL", "memory://")
    prefix = app.config.get("BUS_PREFIX")  # isolates one platform on a shared Redis
    # A worker that starts while Redis restarts (gunicorn replacing a killed worker) waits
    # for it rather than failing to boot: gunicorn's master shuts the whole platform down
    # when a worker exits at boot (docs/faults.md).
    wait = float(app.config.get("BUS_CONNECT_WAIT", BUS_CONNECT_WAIT))
    deadline = time.monotonic() + wait
    while True:
        try:
            bus = make_bus(url, prefix=prefix) if prefix else make_bus(url)
            break
        except BusError as exc:
            if app.config.get("BUS_OPTIONAL"):
                # `flask doctor`: start anyway, on an in-process bus, to say Redis is down.
                log.warning("the bus is unreachable (%s); in-process bus instead", exc)
                bus = InProcessBus()
                break
            if time.monotonic() >= deadline:
                raise
            log.warning("the bus is unreachable (%s); trying again", exc)
            time.sleep(0.5)
    app.extensions["bus"] = bus
    atexit.register(bus.close)


def get_bus(app: Flask) -> Bus:
    """The bus `init_app` made for this app."""
    bus: Bus = app.extensions["bus"]
    return bus
