"""The bridges connected to this worker, and their presence on the bus for the others.

Each authenticated bridge socket is a `BridgeConnection`. While it is up, this worker
serves the bus channel `terminals.<id>.bridge` for it: a request from any worker (a
browser tab's, or a `RemoteTransport` anywhere) reaches the worker holding the socket,
which forwards the command on the WebSocket and answers with the bridge's result.
Nobody serving that channel is how "bridge offline" is known at once (`NoServer`).

Card events are published on `terminals.<id>.events` so that browser tabs react at
once. Control messages on `bridges.control` reach every worker: `revoke` closes the
bridge's socket wherever it is; `attached` closes an older socket of the terminal that
has reconnected elsewhere (one active bridge per terminal).

A flusher writes presence in batches: connects and disconnects within `FLUSH_SOON`
of happening, and last-seen times for all of this worker's bridges every
`flush_interval` seconds (not one write per ping: 10,000 bridges pinging every 25 s
would be 400 writes a second). It closes any bridge revoked meanwhile, should a control
message have been lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from flask import Flask

from bridge import wire
from bridge.errors import Code

from .. import db
from ..bus import Bus, BusError, Subscription
from ..ops import events
from . import services
from .messages import (
    CommandReply,
    StatusReply,
    StatusRequest,
    error_answer,
    request_from_bus,
)

log = logging.getLogger(__name__)

CONTROL_CHANNEL = "bridges.control"


# Every worker answers on its own channel while it lives: a worker that died answers
# nothing (Redis drops a dead connection's subscriptions at once), so the rows that
# still name it as a bridge's holder are known to be stale within a second.
ALIVE_TIMEOUT = 1.0


def new_worker_id() -> str:
    """host-pid-random: an operator (and a fault test) can tell which process holds a
    bridge from its row; the random part tells a restarted process from the dead one."""
    host = socket.gethostname().split(".")[0][:32] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def alive_channel(worker_id: str) -> str:
    """The bus channel a worker answers on while it lives."""
    return f"workers.{worker_id}.alive"


def workers_alive(bus: Bus, worker_ids: Iterable[str | None]) -> set[str]:
    """Which of these workers answer now (each asked once, all at once)."""
    wanted = sorted({w for w in worker_ids if w})
    found: set[str] = set()
    lock = threading.Lock()

    def ask(worker_id: str) -> None:
        try:
            bus.request(alive_channel(worker_id), {}, ALIVE_TIMEOUT)
        except BusError:
            return
        with lock:
            found.add(worker_id)

    threads = [threading.Thread(target=ask, args=(w,), daemon=True) for w in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ALIVE_TIMEOUT + 1.0)
    return found


# Each bus's registry in this process: a command or status for a terminal whose bridge
# this process holds is answered by the holding connection at once (`local_connection`),
# not sent round the bus to come back here.
_REGISTRIES: weakref.WeakKeyDictionary[Any, BridgeRegistry] = weakref.WeakKeyDictionary()


def local_connection(bus: Any, terminal_id: int) -> BridgeConnection | None:
    """The terminal's bridge connection when this process holds it on `bus`'s registry
    (None: ask the bus). The asker calls it as the bus handler would on this worker
    (`BridgeConnection.call`, `.status`): what is saved is the bus message's JSON passes
    each way and the bus's thread hand-offs (webapp.terminals.remote)."""
    registry = _REGISTRIES.get(bus)
    if registry is None:
        return None
    conn = registry._by_terminal.get(terminal_id)
    if conn is None or conn.closed:
        return None
    return conn


def command_channel(terminal_id: int) -> str:
    """The bus channel that reaches the bridge of a terminal."""
    return f"terminals.{terminal_id}.bridge"


def events_channel(terminal_id: int) -> str:
    """The bus channel where a terminal's card events are published."""
    return f"terminals.{terminal_id}.events"


class _Waiter:
    __slots__ = ("answer", "done")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: wire.Result | wire.Sip2Result | wire.Error | None = None


class BridgeConnection:
    """One authenticated bridge WebSocket held by this worker."""

    def __init__(
        self,
        ws: Any,
        bridge_id: str,
        terminal_id: int,
        registry: BridgeRegistry,
        *,
        kind: str = "",
    ):
        self.ws = ws
        self.kind = kind  # the terminal's kind (counter, kiosk...), for the taps metric
        self.id = uuid.uuid4().hex[:12]
        self.bridge_id = bridge_id
        self.terminal_id = terminal_id
        self.registry = registry
        self.readers: dict[str, wire.CardState | None] = {}
        self.last_seen = time.time()
        self.connected_at = self.last_seen
        self.closed = False
        self.superseded = False
        self.snapshot_seen = threading.Event()
        self._send_lock = threading.Lock()
        self._pending: dict[str, _Waiter] = {}

    @property
    def token(self) -> str:
        """This connection among all workers' (in control messages)."""
        return f"{self.registry.worker_id}/{self.id}"

    def send(self, frame: wire.Frame) -> bool:
        """Send a frame; False once the socket is closed."""
        text = wire.encode(frame)
        with self._send_lock:
            if self.closed:
                return False
            try:
                self.ws.send(text)
                return True
            except Exception:
                log.info("send to bridge %s failed", self.bridge_id)
                return False

    def answers(self, frame: wire.Frame) -> bool:
        """Whether the frame answers a command of ours now running (not the bridge's own)."""
        answer = isinstance(frame, wire.Result | wire.Sip2Result | wire.Error)
        return answer and frame.id in self._pending

    def close(self, reason: str = "", *, code: int = 1000) -> None:
        """Stop serving its channel and close the socket (from any thread)."""
        with self._send_lock:
            if self.closed:
                return
            self.closed = True
        for waiter in list(self._pending.values()):
            waiter.answer = wire.Error(Code.BRIDGE_OFFLINE.value, "the bridge disconnected")
            waiter.done.set()
        try:
            self.ws.close(reason=code, message=reason[:100])
        except Exception:
            log.debug("closing a bridge socket failed", exc_info=True)

    # -- frames from the bridge ------------------------------------------------------

    def on_frame(self, frame: wire.Frame) -> None:
        """Handle one frame the bridge sent (results, events, pings)."""
        self.last_seen = time.time()
        if isinstance(frame, wire.ANSWERS):
            waiter = self._pending.get(frame.id)
            if waiter is not None:
                waiter.answer = frame
                waiter.done.set()
        elif isinstance(frame, wire.Ping):
            self.send(wire.Pong(id=frame.id))
        elif isinstance(frame, wire.Snapshot):
            self.readers = {r.name: r.card for r in frame.readers}
            self.snapshot_seen.set()
            self.publish({"type": "snapshot", "readers": self.reader_list()})
        elif isinstance(frame, wire.EVENTS):
            self._on_event(frame)
        else:
            raise wire.RemoteProtocolError(f"unexpected {type(frame).__name__} from a bridge")

    def _on_event(self, frame: wire.Frame) -> None:
        if isinstance(frame, wire.ReaderAdded):
            self.readers.setdefault(frame.reader, None)
            self.publish({"type": "reader_added", "reader": frame.reader})
        elif isinstance(frame, wire.ReaderRemoved):
            self.readers.pop(frame.reader, None)
            self.publish({"type": "reader_removed", "reader": frame.reader})
        elif isinstance(frame, wire.CardInserted):
            events.tap(self.kind)
            self.readers[frame.reader] = wire.CardState(frame.atr, frame.epoch)
            self.publish(
                {
                    "type": "card_inserted",
                    "reader": frame.reader,
                    "atr": frame.atr.hex().upper(),
                    "epoch": frame.epoch,
                }
            )
            for listener in self.registry.card_listeners:
                listener.on_card(self.terminal_id, frame.reader, frame.epoch)
        elif isinstance(frame, wire.CardRemoved):
            card = self.readers.get(frame.reader)
            if card is not None and card.epoch == frame.epoch:
                self.readers[frame.reader] = None
            self.publish({"type": "card_removed", "reader": frame.reader, "epoch": frame.epoch})
            for listener in self.registry.card_listeners:
                listener.on_removed(self.terminal_id, frame.epoch)

    def reader_list(self) -> list[dict[str, Any]]:
        """The readers and cards as JSON."""
        return [
            {"name": name}
            if card is None
            else {"name": name, "atr": card.atr.hex().upper(), "epoch": card.epoch}
            for name, card in list(self.readers.items())
        ]

    def publish(self, event: dict[str, Any]) -> None:
        """Publish a card event for the terminal's browser tabs."""
        event.update(bridge_id=self.bridge_id, terminal_id=self.terminal_id, at=time.time())
        try:
            self.registry.bus.publish(events_channel(self.terminal_id), event)
        except Exception:
            log.warning("could not publish a card event", exc_info=True)

    # -- commands from the bus -------------------------------------------------------

    def call(self, frame: wire.Frame, timeout: float) -> wire.Result | wire.Sip2Result | wire.Error:
        """Send a command and wait for its result (TIMEOUT / BRIDGE_OFFLINE as Error)."""
        waiter = _Waiter()
        if frame.id in self._pending:
            return error_answer(Code.REFUSED.value, "a command with this id is running", frame.id)
        self._pending[frame.id] = waiter
        try:
            if not self.send(frame):
                return error_answer(Code.BRIDGE_OFFLINE.value, "the bridge disconnected", frame.id)
            if not waiter.done.wait(timeout):
                message = f"no answer from the bridge in {timeout} s"
                return error_answer(Code.TIMEOUT.value, message, frame.id)
            assert waiter.answer is not None  # noqa: S101 - set before done
            return waiter.answer
        finally:
            self._pending.pop(frame.id, None)

    def status(self) -> StatusReply:
        """The bridge's readers and cards as this worker knows them."""
        return StatusReply(
            bridge_id=self.bridge_id,
            terminal_id=self.terminal_id,
            readers=tuple(wire.ReaderState(name, card) for name, card in self.readers.items()),
            ready=self.snapshot_seen.is_set(),
            connected_at=self.connected_at,
            last_seen=self.last_seen,
        )

    def handle_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Serve one bus request for this bridge (runs on the bus's handler pool)."""
        try:
            request = request_from_bus(message)
        except wire.ProtocolError as exc:
            answer = error_answer(Code.TRANSPORT.value, f"bad command: {exc}")
            return CommandReply(answer).to_bus()
        if isinstance(request, StatusRequest):
            return self.status().to_bus()
        return CommandReply(self.call(request.frame, request.timeout)).to_bus()


class CardListener(Protocol):
    """Told on the worker holding a bridge when a card arrives or leaves (must not block)."""

    def on_card(self, terminal_id: int, reader: str, epoch: int) -> None:
        """A card was inserted."""
        ...

    def on_removed(self, terminal_id: int, epoch: int) -> None:
        """The card of `epoch` left its reader."""
        ...


class BridgeRegistry:
    """This worker's bridge connections, their bus channels, and last-seen upkeep.

    The worker serves a terminal's channel, not a connection: a request that arrives
    between a bridge's disconnect and the bus forgetting the channel is answered
    BRIDGE_OFFLINE at once instead of waiting out a timeout. A channel with no
    connection lingers `LINGER` seconds (a bridge usually comes straight back), and is
    dropped at once when another worker announces a newer connection for the terminal.
    """

    LINGER = 10.0

    def __init__(
        self,
        app: Flask,
        bus: Bus,
        *,
        ping_interval: float = 25.0,
        flush_interval: float = 15.0,
        worker_id: str | None = None,
    ) -> None:
        self.app = app
        self.bus = bus
        self.ping_interval = ping_interval
        self.flush_interval = flush_interval
        self.worker_id = worker_id or new_worker_id()
        self._lock = threading.Lock()
        self._serve_lock = threading.Lock()
        self._by_bridge: dict[str, BridgeConnection] = {}
        self._by_terminal: dict[int, BridgeConnection] = {}
        self._served: dict[int, Subscription] = {}
        self._idle_since: dict[int, float] = {}
        # Connects and disconnects are written in batches by the flusher, woken early
        # (FLUSH_SOON) when there are some: a burst of reconnecting bridges costs a few
        # transactions, not one each.
        self._connected: set[str] = set()
        self._disconnected: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # Told of every card event of this worker's bridges (counter push, card cache).
        self.card_listeners: list[CardListener] = []
        self._control = bus.subscribe(CONTROL_CHANNEL, self._on_control)
        self._alive = bus.serve(alive_channel(self.worker_id), lambda message: {"alive": True})
        # The flusher starts with the first bridge: a worker (or a test app) that never
        # holds one runs no thread for it.
        self._flusher: threading.Thread | None = None
        _REGISTRIES[bus] = self

    def __len__(self) -> int:
        return len(self._by_bridge)

    def get(self, bridge_id: str) -> BridgeConnection | None:
        """This worker's live connection of a bridge, if it holds one."""
        return self._by_bridge.get(bridge_id)

    def connections(self) -> list[BridgeConnection]:
        """Every live connection on this worker."""
        with self._lock:
            return list(self._by_bridge.values())

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None or self._stop.is_set():
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="bridge-registry-flush", daemon=True
            )
            self._flusher.start()

    def attach(self, conn: BridgeConnection) -> None:
        """Take over a freshly authenticated connection: serve its channel, announce it."""
        self._start_flusher()
        with self._lock:
            old = [
                c
                for c in (
                    self._by_bridge.get(conn.bridge_id),
                    self._by_terminal.get(conn.terminal_id),
                )
                if c is not None
            ]
            self._by_bridge[conn.bridge_id] = conn
            self._by_terminal[conn.terminal_id] = conn
            self._idle_since.pop(conn.terminal_id, None)
        for older in old:
            older.superseded = True
            older.close("superseded by a newer connection")
        self.bus.publish(
            CONTROL_CHANNEL,
            {
                "op": "attached",
                "bridge_id": conn.bridge_id,
                "terminal_id": conn.terminal_id,
                "conn": conn.token,
                "at": conn.connected_at,
            },
        )
        self._serve(conn.terminal_id)
        with self._lock:
            self._connected.add(conn.bridge_id)
            self._disconnected.discard(conn.bridge_id)
        self._wake.set()
        conn.publish({"type": "bridge_online"})

    def _serve(self, terminal_id: int) -> None:
        with self._serve_lock:
            if terminal_id in self._served:
                return
            subscription = self.bus.serve(
                command_channel(terminal_id), lambda message: self._route(terminal_id, message)
            )
            self._served[terminal_id] = subscription

    def _route(self, terminal_id: int, message: dict[str, Any]) -> dict[str, Any]:
        conn = self._by_terminal.get(terminal_id)
        if conn is None or conn.closed:
            return CommandReply(
                error_answer(Code.BRIDGE_OFFLINE.value, "the bridge is offline")
            ).to_bus()
        return conn.handle_request(message)

    def _stop_serving(self, terminal_id: int) -> None:
        with self._serve_lock:
            with self._lock:
                if terminal_id in self._by_terminal:
                    return
                self._idle_since.pop(terminal_id, None)
            subscription = self._served.pop(terminal_id, None)
        if subscription is not None:
            subscription.unsubscribe()

    def detach(self, conn: BridgeConnection) -> None:
        """The connection ended: record the disconnect; the channel lingers a little."""
        conn.close()
        with self._lock:
            if self._by_bridge.get(conn.bridge_id) is conn:
                del self._by_bridge[conn.bridge_id]
            if self._by_terminal.get(conn.terminal_id) is conn:
                del self._by_terminal[conn.terminal_id]
                self._idle_since[conn.terminal_id] = time.monotonic()
        if conn.superseded:
            return
        with self._lock:
            self._connected.discard(conn.bridge_id)
            self._disconnected.add(conn.bridge_id)
        self._wake.set()
        conn.publish({"type": "bridge_offline"})

    def cut_off(
        self, bridge_id: str, reason: str = "revoked", *, terminal_id: int | None = None
    ) -> None:
        """Close a bridge's connection on every worker (after a revoke); with the
        terminal's id, its tabs hear of the revoke too, though the bridge was offline."""
        self.bus.publish(CONTROL_CHANNEL, {"op": "revoke", "bridge_id": bridge_id})
        self._close_local(bridge_id, reason)
        if terminal_id is not None:
            self.bus.publish(events_channel(terminal_id), {"type": "bridge_revoked"})

    def _close_local(self, bridge_id: str, reason: str) -> None:
        conn = self._by_bridge.get(bridge_id)
        if conn is None:
            return
        if reason == "revoked":
            conn.send(wire.Error("revoked", "this bridge was revoked: pair it again"))
        else:
            conn.superseded = True
        conn.close(reason)

    def _on_control(self, message: dict[str, Any]) -> None:
        op, bridge_id = message.get("op"), message.get("bridge_id")
        if op == "revoke" and isinstance(bridge_id, str):
            self._close_local(bridge_id, "revoked")
        elif op == "attached" and isinstance(message.get("terminal_id"), int):
            terminal_id = message["terminal_id"]
            conn = self._by_terminal.get(terminal_id)
            if conn is not None and conn.token == message.get("conn"):
                return  # our own announcement
            at = message.get("at")
            if conn is not None and isinstance(at, int | float) and conn.connected_at > at:
                return  # a late announcement: our connection is the newer one
            if conn is not None:
                conn.superseded = True
                conn.close("superseded by a newer connection on another worker")
                self.detach(conn)
            # Another worker holds the terminal now: stop answering for it at once.
            self._stop_serving(terminal_id)

    FLUSH_SOON = 0.2

    def _flush_loop(self) -> None:
        next_full = time.monotonic() + self.flush_interval
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_full - time.monotonic()))
            if self._stop.wait(self.FLUSH_SOON):
                return
            self._wake.clear()
            try:
                if time.monotonic() >= next_full:
                    next_full = time.monotonic() + self.flush_interval
                    self.flush()
                else:
                    self.flush_changes()
            except Exception:
                log.warning("writing bridge presence failed", exc_info=True)

    def flush_changes(self) -> None:
        """Write the connects and disconnects since the last flush, in one transaction."""
        with self._lock:
            live = set(self._by_bridge)
            connected = sorted(self._connected & live)
            gone = sorted(self._disconnected - live)
            self._connected.clear()
            self._disconnected.clear()
        if not connected and not gone:
            return
        with self.app.app_context(), db.new_session() as s:
            services.mark_disconnected(s, gone, self.worker_id)
            revoked = services.mark_connected(s, connected, self.worker_id)
        for bridge_id in revoked:
            self._close_local(bridge_id, "revoked")

    def flush(self) -> None:
        """Refresh last-seen of every connection in batches; close bridges revoked meanwhile."""
        now = time.monotonic()
        with self._lock:
            idle = [t for t, since in self._idle_since.items() if now - since > self.LINGER]
        for terminal_id in idle:
            self._stop_serving(terminal_id)
        self.flush_changes()
        conns = self.connections()
        if not conns:
            return
        with self.app.app_context(), db.new_session() as s:
            revoked = services.touch(s, [c.bridge_id for c in conns], self.worker_id)
        for bridge_id in revoked:
            self._close_local(bridge_id, "revoked")

    def close(self) -> None:
        """Close every connection and stop the flusher."""
        if _REGISTRIES.get(self.bus) is self:
            del _REGISTRIES[self.bus]
        self._stop.set()
        self._wake.set()
        self._control.unsubscribe()
        self._alive.unsubscribe()
        for conn in self.connections():
            conn.close("platform shutting down", code=1001)  # going away: come back
        with self._serve_lock:
            served, self._served = list(self._served.values()), {}
        for subscription in served:
            subscription.unsubscribe()
