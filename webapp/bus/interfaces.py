"""The message bus contract: publish/subscribe and request/reply between workers.

A browser tab and the bridge it drives may be connected to different worker processes
or machines; they meet through this one interface. Implementations are named after
their backend (`InProcessBus`, `RedisBus`) and chosen by `make_bus(url)`; callers
depend on `Bus` only. The docstrings here are the contract every implementation keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Message = dict[str, Any]
Callback = Callable[[Message], None]
Handler = Callable[[Message], Message]


class BusError(Exception):
    """Base class for bus failures."""


class BusTimeout(BusError):
    """No reply arrived within the timeout (nobody serves the channel, or too slowly)."""


class NoServer(BusTimeout):
    """Nobody serves the channel right now; raised at once instead of waiting it out."""


class BusHandlerError(BusError):
    """The serving side's handler failed; its exception stays on the serving worker."""


class BusClosed(BusError):
    """The bus was closed (before or while waiting)."""


class BadMessage(BusError, ValueError):
    """A message is not a JSON object, or is larger than the bus's size limit."""


class Subscription(Protocol):
    """A subscription or a served channel; `unsubscribe()` ends it (idempotent)."""

    def unsubscribe(self) -> None:
        """Stop delivering to this callback/handler; safe to call more than once."""
        ...


class Bus(Protocol):
    """Publish/subscribe and request/reply over named channels, thread-safe.

    Messages are JSON objects (dicts of JSON values) of at most the bus's size limit;
    every receiver gets its own decoded copy. Publish/subscribe and request/reply use
    separate namespaces: `subscribe("x")` never sees `request("x")`.
    """

    def publish(self, channel: str, message: Message) -> None:
        """Deliver `message` to every current subscriber of `channel`, on every worker.

        Fire and forget: returns before callbacks run; messages from one publisher on one
        channel arrive in order. Raises BadMessage (too large, not JSON) or BusClosed.
        """
        ...

    def subscribe(self, channel: str, callback: Callback) -> Subscription:
        """Call `callback(message)` for every message published on `channel` from now on.

        Callbacks run on the bus's delivery thread, one at a time: keep them short and
        hand long work to another thread. An exception in a callback is logged and
        dropped. Active once this returns.
        """
        ...

    def serve(self, channel: str, handler: Handler) -> Subscription:
        """Answer requests on `channel` with `handler(message) -> reply` (a JSON object).

        One server per channel is the intended use (the worker that holds a bridge's
        connection serves that bridge's channel); if several serve, the first reply
        wins. Handlers run on a thread pool and may block. A handler exception becomes
        BusHandlerError at the requester. Active once this returns.
        """
        ...

    def request(self, channel: str, message: Message, timeout: float) -> Message:
        """Send `message` to the server of `channel` and return its reply.

        Raises NoServer at once when nobody serves the channel, BusTimeout when no reply
        comes within `timeout` seconds (a server that went away never makes this hang),
        BusHandlerError, BadMessage or BusClosed.
        """
        ...

    def close(self) -> None:
        """Stop delivery, fail pending requests with BusClosed, free threads; idempotent."""
        ...
