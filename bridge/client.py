"""The bridge's connection to the platform: out over one WebSocket, and back if it drops.

One connection at a time. Each one: connect (wss, or ws on loopback), answer the
server's fresh challenge with the device key, wait for Welcome, send the snapshot of
readers and cards, then serve commands and send card events as they happen, pinging
every `ping_interval` seconds. A connection that goes quiet for `DEAD_AFTER` pings is
dropped. Reconnects back off exponentially with full jitter (so that a platform restart
does not bring every bridge back in the same second). When the platform refuses or
closes a connection for load (`busy`, `auth_timeout`, `rate_limited`: bridge/wire.py),
the wait is from the upper half of a longer range instead (15-30 s by default; a
failure's wait is at most 8 s, so a bridge is back within 10 s of the platform): shedding
load would not work if the refused came straight back. Only `unauthorized` and
`revoked` mean the pairing is no good (`AuthRefused`: pair again).

Never replays: a command belongs to the connection it came on. If that connection
drops while the command runs, its result is thrown away and the command is not run
again after reconnecting (the platform has already answered its caller with an
error). The session also refuses a command id it has seen before.

A card put on a reader between two connections is told on the next one, right after
its snapshot, as the CardInserted it was (if that card is still on the reader and was
put there within `MISSED_TAP_S`): the snapshot alone would show the card, but the
platform answers taps, not snapshots, and a citizen who tapped during a platform worker's
restart would wait at the counter for nothing. Only insertions: a command is never
replayed, nor a removal (the snapshot shows it).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket

from . import __version__, wire
from .errors import Code
from .pairing import BridgeIdentity, origin_of, websocket_url
from .session import BridgeSession

log = logging.getLogger(__name__)

AGENT = f"ichimai-bridge/{__version__}"
# Commands running at once (one per reader is the normal case; keyboard output is one).
MAX_CONCURRENT = 8
# A connection with no frame from the platform for this many ping intervals is dead.
DEAD_AFTER = 2.5
BACKOFF_BASE = 0.5
# After a failure the wait is at most this: a bridge is back within 10 s of the platform
# (docs/faults.md); full jitter still spreads a restart's reconnections over those 8 s.
BACKOFF_CAP = 8.0
# After a refusal for load, the wait is from REFUSED_CAP/2 to REFUSED_CAP: shedding load
# would not work if the refused came straight back.
REFUSED_CAP = 30.0
# Past this many attempts the range is at the cap anyway (and 2**attempt must not
# overflow a float: a platform unreachable for hours would otherwise end the bridge).
_MAX_DOUBLINGS = 32

# A card put on a reader while the connection was down is told on the next connection
# when it was put there at most this long before (a tap during a worker's restart, not a
# card left on the reader for an hour).
MISSED_TAP_S = 60.0

# The platform's error codes that mean this bridge's pairing is no good.
AUTH_CODES = frozenset({"unauthorized", "revoked"})
# The platform's error codes that mean "not now": it sheds load, or cut off a flood.
LOAD_CODES = frozenset({wire.BUSY, wire.AUTH_TIMEOUT, wire.RATE_LIMITED})


# RFC 6455 7.4.1: "going away", what a platform worker that is stopping closes with.
CLOSE_GOING_AWAY = 1001


class PlatformClosed(ConnectionError):
    """The platform closed the WebSocket, with a close code (1001: a worker stopping)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"the platform closed the connection ({code}: {reason or 'no reason'})")
        self.code = code


class AuthRefused(Exception):
    """The platform refused this bridge (unknown key, or revoked): pairing is needed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class PlatformBusy(Exception):
    """The platform refused or closed this connection for load: come back later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def backoff_delay(attempt: int, *, base: float, cap: float, refused: bool = False) -> float:
    """Seconds before the next connection: full jitter over base x 2^attempt (at most
    `cap`); after a refusal for load, the upper half of the whole range, cap/2 to cap
    (the client passes its longer REFUSED_CAP as `cap` then)."""
    if refused:
        return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not a secret
    ceiling = min(cap, base * 2 ** min(attempt, _MAX_DOUBLINGS))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def _refusal(error: wire.Error) -> Exception:
    """What an error frame from the platform means for this connection."""
    if error.code in AUTH_CODES:
        return AuthRefused(error.code, error.message)
    if error.code in LOAD_CODES:
        return PlatformBusy(error.code, error.message)
    return ConnectionError(f"the platform refused the connection: {error.code}")


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
        refused_cap: float | None = None,
    ) -> None:
        self.identity = identity
        self.session = session
        self.url = url or websocket_url(identity.platform)
        self.origin = origin_of(identity.platform)
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # The default back-off waits 15-30 s after a refusal; a back-off of the caller's
        # own (a test's short one) is used for refusals too, unless told otherwise.
        if refused_cap is None:
            refused_cap = REFUSED_CAP if backoff_cap == BACKOFF_CAP else backoff_cap
        self.refused_cap = refused_cap
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.connections = 0  # successful authentications, for tests and logs
        self.last_close_code: int | None = None  # the platform's last close code, if any
        self._conn: _Connection | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._workers = _Workers("bridge-command")
        self._events_lock = threading.Lock()
        # Per reader, the card inserted while no connection was up, and when (monotonic).
        self._missed: dict[str, tuple[wire.CardInserted, float]] = {}
        session.emit = self._emit

    # -- lifetime --------------------------------------------------------------------

    def run_forever(self) -> None:
        """Connect, serve, reconnect with jittered back-off until `stop()` (or revoked)."""
        attempt = 0
        while not self.stopping.is_set():
            started = self.connections
            refused = False
            try:
                self.run_once()
            except AuthRefused:
                raise
            except PlatformBusy as exc:
                refused = True
                log.warning("the platform asked us to come back later: %s", exc.code)
            except Exception as exc:
                if self.stopping.is_set():
                    break
                log.warning("connection to the platform failed: %s", _describe(exc))
            if self.connections != started and not refused:
                attempt = 0  # it was up: start the back-off again from the bottom
            delay = backoff_delay(
                attempt,
                base=self.backoff_base,
                cap=self.refused_cap if refused else self.backoff_cap,
                refused=refused,
            )
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
                snapshot = self.session.snapshot()
                conn.send(snapshot)
                for frame in self._missed_taps(snapshot):
                    conn.send(frame)
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
        opcode, data = conn.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            self.last_close_code = code
            if code == CLOSE_GOING_AWAY:
                # A platform worker is stopping: the next connection lands on another.
                log.info("the platform worker is going away (1001); reconnecting")
            raise PlatformClosed(code, data[2:].decode("utf-8", "replace"))
        if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY) or not data:
            raise ConnectionError("the platform closed the connection")
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return wire.decode(text)

    def _handshake(self, conn: _Connection) -> wire.Welcome:
        challenge = self._recv(conn)
        if isinstance(challenge, wire.Error):  # refused before the challenge (load)
            raise _refusal(challenge)
        if not isinstance(challenge, wire.Challenge):
            raise wire.RemoteProtocolError("expected a challenge")
        signature = self.identity.sign_challenge(self.origin, challenge.nonce)
        conn.send(wire.Auth(self.identity.bridge_id, signature, AGENT))
        answer = self._recv(conn)
        if isinstance(answer, wire.Error):
            raise _refusal(answer)
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
                if frame.code in AUTH_CODES or frame.code in LOAD_CODES:
                    raise _refusal(frame)
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

        self._workers.run(work)

    def _emit(self, frame: wire.Frame) -> None:
        with self._events_lock:
            conn = self._conn
            if conn is not None and conn.send(frame):
                return
            if isinstance(frame, wire.CardInserted) and self.connections:
                # Between two connections (the first one's snapshot shows what was
                # there before: a card left on the reader is no tap).
                self._missed[frame.reader] = (frame, time.monotonic())
            elif isinstance(frame, wire.CardRemoved | wire.ReaderRemoved):
                self._missed.pop(frame.reader, None)

    def _missed_taps(self, snapshot: wire.Snapshot) -> list[wire.CardInserted]:
        """The insertions made while no connection was up whose card the snapshot still
        shows, recent enough to be a tap someone waits for (under the events lock)."""
        missed, self._missed = self._missed, {}
        now = time.monotonic()
        present = {r.name: r.card.epoch for r in snapshot.readers if r.card is not None}
        return [
            frame
            for frame, at in missed.values()
            if present.get(frame.reader) == frame.epoch and now - at <= MISSED_TAP_S
        ]


class _Workers:
    """Daemon threads that run commands, started when none is idle and kept for the
    next: a command waits for no thread to start (a quarter of a millisecond on a small
    machine, on every SIP2 check and card command). At most as many as ever ran at once
    (the client's slots bound that to MAX_CONCURRENT). Daemons, as the threads before
    them: a command stuck on a reader never holds the bridge's exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self.started = 0

    def run(self, work: Callable[[], None]) -> None:
        """Run `work` on an idle thread, or on a new one when none is idle."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                self.started += 1
                threading.Thread(target=self._loop, name=self.name, daemon=True).start()
        self._work.put(work)

    def _loop(self) -> None:
        while True:
            work = self._work.get()
            try:
                work()
            except Exception:  # work() answers its own errors; never lose the thread
                log.exception("a bridge command failed outside its handler")
            with self._lock:
                self._idle += 1


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
