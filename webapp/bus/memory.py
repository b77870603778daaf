"""The in-process bus: the embedded default (one process, `memory://`)."""

from __future__ import annotations

import uuid

from . import codec
from .hub import LocalHub, LocalSubscription
from .interfaces import Callback, Handler, Message, NoServer


class InProcessBus:
    """`Bus` within one process: threads, no network. See `interfaces.Bus` for the contract."""

    def __init__(self, *, max_bytes: int = codec.DEFAULT_MAX_BYTES, prefix: str = "") -> None:
        # `prefix` is accepted for parity with RedisBus (make_bus passes the same options
        # to either); an in-process bus is private to its process, so it needs none.
        self.max_bytes = max_bytes
        self._hub = LocalHub(max_bytes, "bus")

    def publish(self, channel: str, message: Message) -> None:
        """See `Bus.publish`."""
        self._hub.check_open()
        self._hub.deliver(channel, codec.encode(message, self.max_bytes))

    def subscribe(self, channel: str, callback: Callback) -> LocalSubscription:
        """See `Bus.subscribe`."""
        token, _ = self._hub.add("sub", channel, callback)
        return LocalSubscription(lambda: self._hub.remove("sub", channel, token))

    def serve(self, channel: str, handler: Handler) -> LocalSubscription:
        """See `Bus.serve`."""
        token, _ = self._hub.add("srv", channel, handler)
        return LocalSubscription(lambda: self._hub.remove("srv", channel, token))

    def request(self, channel: str, message: Message, timeout: float) -> Message:
        """See `Bus.request`."""
        payload = codec.encode(message, self.max_bytes)
        self._hub.check_open()
        handler = self._hub.server_for(channel)
        if handler is None:
            raise NoServer(f"nobody serves {channel!r}")
        correlation = uuid.uuid4().hex
        pending = self._hub.open_request(correlation)
        self._hub.run_handler(handler, payload, lambda env: self._hub.complete(correlation, env))
        return self._hub.wait(correlation, pending, timeout)

    def close(self) -> None:
        """See `Bus.close`."""
        self._hub.close()

    def __enter__(self) -> InProcessBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
