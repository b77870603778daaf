"""What every bus does within one process: local subscribers, servers, pending requests.

`InProcessBus` is this hub alone; `RedisBus` puts Redis between hubs on several workers
(local delivery first, then Redis for the others: the python-socketio manager pattern).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import codec
from .interfaces import (
    BusClosed,
    BusHandlerError,
    BusTimeout,
    Callback,
    Handler,
    Message,
    NoServer,
)

log = logging.getLogger(__name__)

ReplySink = Callable[[bytes], None]

# Bounds (a slow consumer must not grow memory without end). Publications waiting for
# the delivery thread: beyond this, new ones are dropped with a warning (publish is fire
# and forget). Requests queued or running on the handler pool: beyond this, a request
# is answered "BusBusy" at once instead of waiting past its requester's timeout.
DELIVERY_QUEUE_LIMIT = 10_000
HANDLER_QUEUE_LIMIT = 1_000


class LocalSubscription:
    """A subscription or served channel; calls `release` once on unsubscribe."""

    def __init__(self, release: Callable[[], object]) -> None:
        self._release: Callable[[], object] | None = release
        self._lock = threading.Lock()

    def unsubscribe(self) -> None:
        """End it; safe to call more than once."""
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> LocalSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()


class _Pending:
    """One request waiting for its reply (an encoded reply envelope)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: bytes | None = None
        # Over Redis: how many workers received the request, and how many of them said
        # they no longer serve the channel. When every receiver declined, nobody will
        # answer: the request fails at once (NoServer) instead of waiting out its timeout.
        self.receivers: int | None = None
        self.declined = 0


# The answer of a worker that received a request for a channel it no longer serves (it
# stopped serving between the request's publish and its delivery).
NOT_SERVED = codec.encode({"not_served": True}, 1024)


def reply_envelope(reply: Message | None, error: str | None, max_bytes: int) -> bytes:
    """The encoded answer of a handler: {"ok": reply} or {"error": text}."""
    if error is not None:
        return codec.encode({"error": error}, max_bytes + 1024)
    return codec.encode({"ok": reply}, max_bytes + 1024)


class LocalHub:
    """Thread-safe local registries, one delivery thread, a handler pool, pending requests."""

    def __init__(self, max_bytes: int, name: str, handler_threads: int = 16) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._subs: dict[str, dict[int, Callback]] = {}
        self._servers: dict[str, dict[int, Handler]] = {}
        self._pending: dict[str, _Pending] = {}
        self._closed = False
        self._queue: queue.Queue[tuple[Callback, bytes] | None] = queue.Queue(DELIVERY_QUEUE_LIMIT)
        self._handlers_in_flight = 0
        self._thread = threading.Thread(target=self._deliver_loop, name=f"{name}-deliver")
        self._thread.daemon = True
        self._thread.start()
        self._pool = ThreadPoolExecutor(handler_threads, thread_name_prefix=f"{name}-serve")

    @property
    def closed(self) -> bool:
        """True once `close()` ran."""
        return self._closed

    def check_open(self) -> None:
        """Raise BusClosed after `close()`."""
        if self._closed:
            raise BusClosed("bus is closed")

    # -- registries ------------------------------------------------------------------

    def add(self, table: str, channel: str, fn: Any) -> tuple[int, bool]:
        """Register a callback/handler; returns its token and whether it is the first."""
        with self._lock:
            self.check_open()
            entries = self._table(table).setdefault(channel, {})
            token = next(self._ids)
            entries[token] = fn
            return token, len(entries) == 1

    def remove(self, table: str, channel: str, token: int) -> bool:
        """Unregister; returns True when the channel has no entries left."""
        with self._lock:
            entries = self._table(table).get(channel, {})
            entries.pop(token, None)
            if entries:
                return False
            self._table(table).pop(channel, None)
            return True

    def _table(self, table: str) -> dict[str, dict[int, Any]]:
        return self._subs if table == "sub" else self._servers

    def server_for(self, channel: str) -> Handler | None:
        """A local handler of `channel`, if this process serves it."""
        with self._lock:
            handlers = self._servers.get(channel)
            return next(iter(handlers.values())) if handlers else None

    # -- publish/subscribe -----------------------------------------------------------

    def deliver(self, channel: str, payload: bytes) -> None:
        """Queue an encoded message for every current local subscriber of `channel`."""
        with self._lock:
            if self._closed:
                return
            callbacks = list(self._subs.get(channel, {}).values())
        for callback in callbacks:
            try:
                self._queue.put_nowait((callback, payload))
            except queue.Full:
                log.warning("bus delivery queue full: a message on %r was dropped", channel)

    def _deliver_loop(self) -> None:
        while (item := self._queue.get()) is not None and not self._closed:
            callback, payload = item
            try:
                callback(codec.decode(payload, self.max_bytes))  # each gets its own copy
            except Exception:
                log.exception("bus subscriber callback failed")

    # -- request/reply ---------------------------------------------------------------

    def run_handler(self, handler: Handler, payload: bytes, sink: ReplySink) -> None:
        """Run `handler` on the pool and pass its encoded reply envelope to `sink`."""
        with self._lock:
            busy = self._handlers_in_flight >= HANDLER_QUEUE_LIMIT
            if not busy:
                self._handlers_in_flight += 1
        if busy:
            log.warning("bus handler queue full: a request was refused")
            self._reply(sink, reply_envelope(None, "BusBusy", self.max_bytes))
            return

        def work() -> None:
            try:
                self._answer(handler, payload, sink)
            finally:
                with self._lock:
                    self._handlers_in_flight -= 1

        try:
            self._pool.submit(work)
        except RuntimeError:  # pool shut down: the bus is closing
            with self._lock:
                self._handlers_in_flight -= 1
            log.debug("bus closing; request dropped")

    def _answer(self, handler: Handler, payload: bytes, sink: ReplySink) -> None:
        try:
            reply = handler(codec.decode(payload, self.max_bytes))
            codec.encode(reply, self.max_bytes)  # the reply obeys the same rules
            envelope = reply_envelope(reply, None, self.max_bytes)
        except Exception as exc:
            log.exception("bus handler failed")
            envelope = reply_envelope(None, type(exc).__name__, self.max_bytes)
        if not self._closed:  # closed while the handler ran: nobody to answer through
            self._reply(sink, envelope)

    @staticmethod
    def _reply(sink: ReplySink, envelope: bytes) -> None:
        try:
            sink(envelope)
        except Exception:
            log.exception("could not send a bus reply")

    def open_request(self, correlation: str) -> _Pending:
        """Register a pending request under its correlation id."""
        with self._lock:
            self.check_open()
            pending = self._pending[correlation] = _Pending()
            return pending

    def forget(self, correlation: str) -> None:
        """Drop a pending request that will never get a reply."""
        with self._lock:
            self._pending.pop(correlation, None)

    def complete(self, correlation: str, envelope: bytes) -> None:
        """Hand a reply envelope to the waiting request (late replies are dropped).

        A NOT_SERVED answer counts as a decline: the request ends (NoServer) only once
        every receiver declined, so one worker's decline never hides another's answer.
        """
        with self._lock:
            pending = self._pending.get(correlation)
            if pending is None:
                return
            if envelope == NOT_SERVED:
                pending.declined += 1
                if pending.receivers is None or pending.declined < pending.receivers:
                    return
            elif pending.done.is_set():
                return  # the first answer wins
            pending.reply = envelope
        pending.done.set()

    def expect(self, correlation: str, receivers: int) -> None:
        """Record how many workers received the request (declines before it count)."""
        with self._lock:
            pending = self._pending.get(correlation)
            if pending is None:
                return
            pending.receivers = receivers
            if pending.declined < receivers or pending.done.is_set():
                return
            pending.reply = NOT_SERVED
        pending.done.set()

    def wait(self, correlation: str, pending: _Pending, timeout: float) -> Message:
        """Wait for the reply of a request; decode it or raise the right BusError."""
        try:
            if not pending.done.wait(timeout):
                raise BusTimeout(f"no reply within {timeout} s")
        finally:
            with self._lock:
                self._pending.pop(correlation, None)
        if pending.reply is None:
            raise BusClosed("bus closed while waiting for a reply")
        if pending.reply == NOT_SERVED:
            raise NoServer("every worker that received the request had stopped serving it")
        answer = codec.decode(pending.reply, self.max_bytes + 1024)
        if "error" in answer:
            raise BusHandlerError(str(answer["error"]))
        reply = answer.get("ok")
        if not isinstance(reply, dict):
            raise BusHandlerError("reply is not a JSON object")
        return reply

    def close(self) -> None:
        """Stop delivery and handlers; wake pending requests with BusClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._pending.values())
            self._subs.clear()
            self._servers.clear()
        for p in pending:
            p.done.set()  # reply stays None: BusClosed
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wakes the loop; a full queue wakes it anyway
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
