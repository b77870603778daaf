"""A worker that is stopping closes its WebSockets at once, with 1001 "going away".

A bridge's socket (/ws/bridge) and a terminal tab's (/ws/terminal) live for hours. When
gunicorn stops a worker (SIGTERM: a deploy, a restart, a scale-down), the worker stops
accepting and waits for its open requests up to the graceful timeout; a socket would
hold it that whole time and then be cut without a word. Instead, gunicorn.conf.py calls
`going_away_soon()` from the worker's SIGTERM handler: every socket this process holds
is closed with code 1001 (RFC 6455 7.4.1, "an endpoint is going away, such as a server
going down"), the handlers return, and the worker exits in a second or two. Bridges
reconnect at once and land on a worker that stays (bridge/client.py); tabs reconnect.
A socket that arrives while the worker is stopping is closed the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

GOING_AWAY = 1001
MESSAGE = "going away: reconnect"

_lock = threading.Lock()
_held: dict[int, tuple[Any, Callable[[], None] | None]] = {}
_leaving = threading.Event()


def leaving() -> bool:
    """Whether this process is stopping (its sockets are being closed)."""
    return _leaving.is_set()


def _close(ws: Any, wake: Callable[[], None] | None) -> None:
    with contextlib.suppress(Exception):
        ws.close(reason=GOING_AWAY, message=MESSAGE)
    # simple-websocket: a handler blocked in receive() waits on this event.
    event = getattr(ws, "event", None)
    if event is not None:
        event.set()
    if wake is not None:
        with contextlib.suppress(Exception):
            wake()


@contextlib.contextmanager
def held(ws: Any, wake: Callable[[], None] | None = None) -> Iterator[bool]:
    """While a WebSocket handler runs: closed with 1001 if the process stops. Yields
    False (and closes at once) when the process is stopping already. `wake` unblocks a
    handler waiting on something other than the socket (a queue)."""
    key = id(ws)
    with _lock:
        _held[key] = (ws, wake)
    try:
        if _leaving.is_set():
            _close(ws, wake)
            yield False
        else:
            yield True
    finally:
        with _lock:
            _held.pop(key, None)


def going_away() -> int:
    """Close every socket this process holds with 1001; how many there were."""
    _leaving.set()
    with _lock:
        held_now = list(_held.values())
    for ws, wake in held_now:
        _close(ws, wake)
    if held_now:
        log.info("worker stopping: closed %d WebSockets (1001 going away)", len(held_now))
    return len(held_now)


def going_away_soon() -> None:
    """From a signal handler: `going_away` on its own, since closing sockets blocks. Under
    gevent a signal handler runs in the event loop, where nothing may block (not even a
    thread's start): a greenlet is spawned instead, as gunicorn's gevent worker does."""
    _leaving.set()
    try:
        from gevent import monkey
    except ImportError:
        monkey = None
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        gevent.spawn(going_away)
        return
    threading.Thread(target=going_away, name="going-away", daemon=True).start()


def reset_for_tests() -> None:
    """Forget that this process was stopping (tests run many apps in one process)."""
    _leaving.clear()
