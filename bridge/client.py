"""The bridge's connection to the platform: out over one WebSocket, and back if it drops.

One connection at a time. Each one: connect (wss, or ws on loopback), answer the
server's fresh challenge with the device key, wait for Welcome, send the snapshot of
readers and cards, then serve commands and send card events as they happen, pinging
every `ping_interval` seconds. A connection that goes quiet for `DEAD_AFTER` pings is
dropped. Reconnects back off exponentially with full jitter (so that a platform restart
does not bring every bridge back in the same second).

Never replays: a command belongs to the connection it came on. If that connection
drops while the command runs, its result is thrown away and the command is not run
again after reconnecting (the platform has already answered its caller with an
error). The session also refuses a command id it has seen before.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import websocket

from . import wire
from .errors import Code
from .pairing import BridgeIdentity, origin_of, websocket_url
from .session import BridgeSession

log = logging.getLogger(__name__)

AGENT = "ichimai-bridge/0.1"
# Commands running at once (one per reader is the normal case; keyboard output is one).
MAX_CONCURRENT = 8
# A connection with no frame from the platform for this many ping intervals is dead.
DEAD_AFTER = 2.5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


class AuthRefused(Exception):
    """The platform refused this bridge (unknown key, or revoked): pairing is needed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class _Connection:
    """One live WebSocket; `send` is thread-safe and fails quietly once it is closed."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.lock = threading.Lock()
        self.open = True

    def send(self, frame: wire.Frame) -> bool:
        text = wire.encode(frame)
        with self.lock:
            if not self.open:
                return False
            try:
                self.ws.send(text)
                return True
            except Exception:
                self.open = False
                return False

    def close(self) -> None:
        with self.lock:
            self.open = False
        try:
            self.ws.abort()
        except Exception:
            log.debug("aborting the socket failed", exc_info=True)
        try:
            self.ws.close(timeout=0.5)
        except Exception:
            log.debug("closing the socket failed", exc_info=True)
        # close() does nothing once the library thinks the socket is gone (after a
        # protocol error, say): shutdown() always releases the file descriptor.
        self.ws.shutdown()


class BridgeClient:
    """Keeps one authenticated connection to the platform and serves the session."""

    def __init__(
        self,
        identity: BridgeIdentity,
        session: BridgeSession,
        *,
        url: str | None = None,
        connect_timeout: float = 10.0,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self.identity = identity
        self.session = session
        self.url = url or websocket_url(identity.platform)
        self.origin = origin_of(identity.platform)
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.connections = 0  # successful authentications, for tests and logs
        self._conn: _Connection | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._events_lock = threading.Lock()
        session.emit = self._emit

    # -- lifetime --------------------------------------------------------------------

    def run_forever(self) -> None:
        """Connect, serve, reconnect with jittered back-off until `stop()` (or revoked)."""
        attempt = 0
        while not self.stopping.is_set():
            started = self.connections
            try:
                self.run_once()
            except AuthRefused:
                raise
            except Exception as exc:
                if self.stopping.is_set():
                    break
                log.warning("connection to the platform failed: %s", _describe(exc))
            if self.connections != started:
                attempt = 0  # it was up: start the back-off again from the bottom
            delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))  # noqa: S311
            attempt += 1
            log.info("reconnecting in %.1f s", delay)
            self.stopping.wait(delay)

    def stop(self) -> None:
        """Close the connection and end `run_forever`."""
        self.stopping.set()
        conn = self._conn
        if conn is not None:
            conn.close()

    def drop(self) -> None:
        """Drop the current connection (as a network failure would); it reconnects."""
        conn = self._conn
        if conn is not None:
            conn.close()

    # -- one connection --------------------------------------------------------------

    def run_once(self) -> None:
        """One connection, from handshake to close."""
        ws = websocket.create_connection(
            self.url,
            timeout=self.connect_timeout,
            enable_multithread=True,
            origin=self.origin,
        )
        conn = _Connection(ws)
        try:
            welcome = self._handshake(conn)
            with self._events_lock:
                # Events wait for the snapshot, so none is sent before it.
                self._conn = conn
                self.connections += 1
                conn.send(self.session.snapshot())
            self.connected.set()
            log.info("connected to %s as %s", self.origin, self.identity.bridge_id)
            self._serve(conn, welcome.ping_interval)
        finally:
            self.connected.clear()
            with self._events_lock:
                if self._conn is conn:
                    self._conn = None
            conn.close()

    def _recv(self, conn: _Connection) -> wire.Frame:
        text = conn.ws.recv()
        if not text:
            raise ConnectionError("the platform closed the connection")
        return wire.decode(text)

    def _handshake(self, conn: _Connection) -> wire.Welcome:
        challenge = self._recv(conn)
        if not isinstance(challenge, wire.Challenge):
            raise wire.RemoteProtocolError("expected a challenge")
        signature = self.identity.sign_challenge(self.origin, challenge.nonce)
        conn.send(wire.Auth(self.identity.bridge_id, signature, AGENT))
        answer = self._recv(conn)
        if isinstance(answer, wire.Error):
            raise AuthRefused(answer.code, answer.message)
        if not isinstance(answer, wire.Welcome):
            raise wire.RemoteProtocolError("expected welcome")
        return answer

    def _serve(self, conn: _Connection, ping_interval: float) -> None:
        conn.ws.settimeout(min(1.0, ping_interval))
        last_heard = last_ping = time.monotonic()
        while not self.stopping.is_set() and conn.open:
            now = time.monotonic()
            if now - last_heard > DEAD_AFTER * ping_interval:
                raise ConnectionError("the platform stopped answering pings")
            if now - last_ping >= ping_interval:
                last_ping = now
                conn.send(wire.Ping())
            try:
                frame = self._recv(conn)
            except websocket.WebSocketTimeoutException:
                continue
            last_heard = time.monotonic()
            if isinstance(frame, wire.COMMANDS):
                self._dispatch(conn, frame)
            elif isinstance(frame, wire.Error):
                log.warning("the platform reported: %s", frame.code)
                if frame.code == "revoked":
                    raise AuthRefused(frame.code, frame.message)
            # Pong and anything else only count as signs of life.

    def _dispatch(self, conn: _Connection, command: wire.Frame) -> None:
        if not self._slots.acquire(blocking=False):
            conn.send(wire.Error(Code.TRANSPORT.value, "the bridge is busy", id=command.id))
            return

        def work() -> None:
            try:
                answer = self.session.handle(command)
                try:
                    # Only on the connection the command came on; never after a reconnect.
                    sent = conn.send(answer)
                except wire.LocalProtocolError as exc:
                    message = f"the answer does not fit in a frame: {exc}"[:200]
                    sent = conn.send(wire.Error(Code.TRANSPORT.value, message, id=command.id))
                if not sent:
                    log.info("connection closed before a result could be sent; dropped")
            finally:
                self._slots.release()

        threading.Thread(target=work, name="bridge-command", daemon=True).start()

    def _emit(self, frame: wire.Frame) -> None:
        with self._events_lock:
            conn = self._conn
            if conn is not None:
                conn.send(frame)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
