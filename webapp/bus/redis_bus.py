"""The Redis bus: several worker processes or machines (`redis://host:port/db`).

The python-socketio manager pattern: a publish is delivered to this worker's own
subscribers first, then published on Redis for the others; each worker skips its own
messages by worker id. A request goes to the local server if this worker serves the
channel, else over Redis with a correlation id and this worker's reply channel; the
serving worker publishes the reply there. One listener thread owns the PubSub
connection (redis-py's PubSub is not thread-safe): (un)subscriptions are queued to it,
and `subscribe`/`serve` wait until Redis confirmed the subscription.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

import redis

from . import codec
from .hub import NOT_SERVED, LocalHub, LocalSubscription
from .interfaces import BusError, Callback, Handler, Message, NoServer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often the listener looks at queued (un)subscriptions
CONFIRM_SECONDS = 5.0  # how long subscribe/serve wait for Redis to confirm
HEADER_LIMIT = 1024  # bytes of wire header in front of a message


def _wire(header: dict[str, Any], payload: bytes) -> bytes:
    """Header JSON, a newline (never inside compact JSON), then the payload."""
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def _unwire(raw: bytes) -> tuple[dict[str, Any], bytes]:
    head, sep, payload = raw.partition(b"\n")
    if not sep or len(head) > HEADER_LIMIT:
        raise ValueError("not a bus frame")
    header = json.loads(head)
    if not isinstance(header, dict):
        raise ValueError("not a bus frame")
    return header, payload


class RedisBus:
    """`Bus` over Redis pub/sub. See `interfaces.Bus` for the contract."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ichimai:bus:",
        max_bytes: int = codec.DEFAULT_MAX_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self.worker_id = uuid.uuid4().hex
        self._prefix = prefix
        self.foreign_frames = 0  # frames dropped for naming another namespace
        self._reply_channel = f"{prefix}reply:{self.worker_id}"
        # Named connections: `CLIENT LIST` shows which worker holds which connection.
        self.client_name = f"ichimai-bus-{self.worker_id[:12]}"
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=5, client_name=self.client_name
        )
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}  # Redis channel -> local registrations
        self._ops: queue.SimpleQueue[tuple[str, str, threading.Event | None]] = queue.SimpleQueue()
        self._confirm: dict[str, collections.deque[threading.Event]] = {}
        self._stop = threading.Event()
        try:
            self._pubsub = self._new_pubsub([self._reply_channel])
        except redis.RedisError as exc:
            self._client.close()
            raise BusError(f"Redis unreachable: {exc}") from exc
        self._hub = LocalHub(max_bytes, f"bus-{self.worker_id[:6]}")
        self._thread = threading.Thread(target=self._listen, name="bus-redis-listen")
        self._thread.daemon = True
        self._thread.start()

    # -- the Bus interface -----------------------------------------------------------

    def publish(self, channel: str, message: Message) -> None:
        """See `Bus.publish`: local subscribers first, then Redis for the other workers."""
        payload = codec.encode(message, self.max_bytes)
        self._hub.check_open()
        self._hub.deliver(channel, payload)
        self._send(self._pub_channel(channel), _wire(self._header(), payload))

    def subscribe(self, channel: str, callback: Callback) -> LocalSubscription:
        """See `Bus.subscribe`."""
        return self._register("sub", channel, callback, self._pub_channel(channel))

    def serve(self, channel: str, handler: Handler) -> LocalSubscription:
        """See `Bus.serve`."""
        return self._register("srv", channel, handler, self._srv_channel(channel))

    def request(self, channel: str, message: Message, timeout: float) -> Message:
        """See `Bus.request`: the local server if any, else over Redis."""
        payload = codec.encode(message, self.max_bytes)
        self._hub.check_open()
        correlation = uuid.uuid4().hex
        pending = self._hub.open_request(correlation)
        handler = self._hub.server_for(channel)
        if handler is not None:
            self._hub.run_handler(
                handler, payload, lambda env: self._hub.complete(correlation, env)
            )
        else:
            header = self._header(id=correlation, r=self._reply_channel)
            receivers = self._send(self._srv_channel(channel), _wire(header, payload))
            if receivers == 0:  # no worker is subscribed to the channel: fail fast
                self._hub.forget(correlation)
                raise NoServer(f"nobody serves {channel!r}")
            self._hub.expect(correlation, receivers)
        return self._hub.wait(correlation, pending, timeout)

    def close(self) -> None:
        """See `Bus.close`."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._hub.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        try:
            self._pubsub.close()
        finally:
            self._client.close()

    def __enter__(self) -> RedisBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------

    def _header(self, **fields: str) -> dict[str, str]:
        """Every frame names its sender and its namespace (the prefix)."""
        return {"w": self.worker_id, "ns": self._prefix, **fields}

    def _pub_channel(self, channel: str) -> str:
        return f"{self._prefix}pub:{channel}"

    def _srv_channel(self, channel: str) -> str:
        return f"{self._prefix}srv:{channel}"

    def _send(self, redis_channel: str, frame: bytes) -> int:
        try:
            return int(self._client.publish(redis_channel, frame))
        except redis.RedisError as exc:
            raise BusError(f"Redis publish failed: {exc}") from exc

    def _register(self, table: str, channel: str, fn: Any, redis_channel: str) -> LocalSubscription:
        token, _ = self._hub.add(table, channel, fn)
        with self._lock:
            self._counts[redis_channel] = self._counts.get(redis_channel, 0) + 1
            confirmed = threading.Event()
            if self._counts[redis_channel] == 1:
                self._ops.put(("subscribe", redis_channel, confirmed))
            else:
                confirmed.set()

        def release() -> None:
            self._hub.remove(table, channel, token)
            with self._lock:
                self._counts[redis_channel] -= 1
                if self._counts[redis_channel] == 0:
                    del self._counts[redis_channel]
                    self._ops.put(("unsubscribe", redis_channel, None))

        subscription = LocalSubscription(release)
        if not confirmed.wait(CONFIRM_SECONDS):
            subscription.unsubscribe()
            raise BusError(f"Redis did not confirm the subscription to {channel!r}")
        return subscription

    def _new_pubsub(self, channels: list[str]) -> Any:
        """A PubSub subscribed to `channels`, after Redis confirmed each one."""
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        pubsub.subscribe(*channels)
        waiting = set(channels)
        deadline = time.monotonic() + CONFIRM_SECONDS
        while waiting and time.monotonic() < deadline:
            msg = pubsub.get_message(timeout=POLL_SECONDS)
            if msg and msg["type"] == "subscribe":
                waiting.discard(msg["channel"].decode())
        if waiting:
            pubsub.close()
            raise redis.ConnectionError("subscription not confirmed")
        return pubsub

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self._apply_ops()
                msg = self._pubsub.get_message(timeout=POLL_SECONDS)
                if msg is not None:
                    self._on_message(msg)
            except redis.RedisError as exc:
                if self._stop.is_set():
                    return
                log.warning("Redis bus connection lost (%s); reconnecting", exc)
                self._reconnect()
            except Exception:
                log.exception("Redis bus listener error")

    def _apply_ops(self) -> None:
        while True:
            try:
                op, channel, confirmed = self._ops.get_nowait()
            except queue.Empty:
                return
            if op == "subscribe":
                self._pubsub.subscribe(channel)
                if confirmed is not None:
                    self._confirm.setdefault(channel, collections.deque()).append(confirmed)
            else:
                self._pubsub.unsubscribe(channel)

    def _reconnect(self) -> None:
        """New PubSub with every live subscription; waiters are released once it is up."""
        try:
            self._pubsub.close()
        except Exception:
            log.debug("closing the lost PubSub failed", exc_info=True)
        while not self._stop.is_set():
            time.sleep(0.5)
            with self._lock:
                channels = [self._reply_channel, *self._counts]
            try:
                self._pubsub = self._new_pubsub(channels)
            except redis.RedisError as exc:
                log.warning("Redis bus reconnect failed: %s", exc)
                continue
            for waiters in self._confirm.values():
                for event in waiters:
                    event.set()
            self._confirm.clear()
            return

    def _on_message(self, msg: dict[str, Any]) -> None:
        channel = msg["channel"].decode()
        if msg["type"] == "subscribe":
            waiters = self._confirm.get(channel)
            if waiters:
                waiters.popleft().set()
            return
        if msg["type"] != "message":
            return
        try:
            header, payload = _unwire(msg["data"])
        except ValueError:
            log.warning("dropped a malformed bus frame on %s", channel)
            return
        if len(payload) > self.max_bytes + HEADER_LIMIT:
            log.warning("dropped an oversized bus frame on %s", channel)
            return
        if header.get("ns") != self._prefix:
            # Another deployment's frame on our channel (a shared Redis, a prefix typed
            # twice): never taken for ours.
            self.foreign_frames += 1
            log.warning("dropped a bus frame of namespace %r on %s", header.get("ns"), channel)
            return
        if channel == self._reply_channel:
            self._hub.complete(str(header.get("id")), payload)
        elif header.get("w") == self.worker_id:
            return  # our own message: already delivered locally
        elif channel.startswith(f"{self._prefix}pub:"):
            self._hub.deliver(channel[len(self._prefix) + 4 :], payload)
        elif channel.startswith(f"{self._prefix}srv:"):
            self._serve_remote(channel[len(self._prefix) + 4 :], header, payload)

    def _serve_remote(self, channel: str, header: dict[str, Any], payload: bytes) -> None:
        handler = self._hub.server_for(channel)
        reply_to, correlation = header.get("r"), header.get("id")
        if not isinstance(reply_to, str) or not isinstance(correlation, str):
            return
        if not reply_to.startswith(f"{self._prefix}reply:"):
            return

        def sink(envelope: bytes) -> None:
            self._send(reply_to, _wire(self._header(id=correlation), envelope))

        if handler is None:
            # Not served here any more (Redis delivered it before our unsubscribe took):
            # say so, so the requester does not wait out its timeout for nothing.
            sink(NOT_SERVED)
            return
        self._hub.run_handler(handler, payload, sink)
