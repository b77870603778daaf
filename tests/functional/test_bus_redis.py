"""Two worker processes meeting through Redis, as two platform workers would.

One worker serves a bridge's channel (it holds that bridge's WebSocket); the browser's
request lands on the other worker and must get its reply through Redis.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import time
import uuid
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from typing import Any

import pytest

from tests.support.services import REDIS_URL, redis_up

WAIT = 10.0
ctx = mp.get_context("spawn")  # no fork with live bus threads


@pytest.fixture(scope="module", autouse=True)
def _need_redis() -> None:
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


def holder_worker(prefix: str, channel: str, ready: Event, stop: Any) -> None:
    """The worker holding a bridge connection: serves its channel, publishes an event."""
    from webapp.bus.redis_bus import RedisBus

    bus = RedisBus(REDIS_URL, prefix=prefix)

    def handle(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("hang"):
            time.sleep(60)  # a bridge that never answers
        bus.publish("tab:events", {"served": message["n"]})
        return {"n": message["n"], "pid": os.getpid()}

    bus.serve(channel, handle)
    ready.set()
    with contextlib.suppress(queue.Empty):
        stop.get(timeout=60)
    bus.close()


def web_worker(prefix: str, commands: Any, results: Any) -> None:
    """The worker the browser talks to: runs requests and reports what came back."""
    from webapp.bus import BusError
    from webapp.bus.redis_bus import RedisBus

    bus = RedisBus(REDIS_URL, prefix=prefix)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    bus.subscribe("tab:events", events.put)
    results.put(("ready", os.getpid()))
    while (cmd := commands.get()) is not None:
        kind, channel, message, timeout = cmd
        start = time.monotonic()
        try:
            if kind == "event":
                results.put(("event", events.get(timeout=timeout), 0.0))
                continue
            reply = bus.request(channel, message, timeout)
            results.put(("reply", reply, time.monotonic() - start))
        except (BusError, queue.Empty) as exc:
            results.put((type(exc).__name__, None, time.monotonic() - start))
    bus.close()


class Workers:
    """The two worker processes of one test, and the queues to drive the web worker."""

    def __init__(self) -> None:
        self.prefix = f"test:{uuid.uuid4().hex}:"
        self.channel = "bridge:counter-1"
        # A queue, not an Event, to stop the holder: Event.set() deadlocks when a waiter
        # was killed (the condition waits for the dead sleeper to acknowledge).
        self.ready, self.stop = ctx.Event(), ctx.Queue()
        self.commands: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.holder = ctx.Process(
            target=holder_worker, args=(self.prefix, self.channel, self.ready, self.stop)
        )
        self.web = ctx.Process(target=web_worker, args=(self.prefix, self.commands, self.results))

    def start(self) -> None:
        self.holder.start()
        self.web.start()
        assert self.ready.wait(WAIT), "holder worker did not start"
        kind, self.web_pid = self.results.get(timeout=WAIT)
        assert kind == "ready"

    def ask(
        self, message: dict[str, Any], timeout: float = WAIT, channel: str | None = None
    ) -> tuple[str, Any, float]:
        self.commands.put(("request", channel or self.channel, message, timeout))
        result: tuple[str, Any, float] = self.results.get(timeout=timeout + WAIT)
        return result

    def close(self) -> None:
        self.stop.put(None)
        self.commands.put(None)
        for p in (self.holder, self.web):
            p.join(WAIT)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (self.stop, self.commands, self.results):
            q.close()
            q.cancel_join_thread()  # a dead reader must not block our exit


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    w.start()
    yield w
    w.close()


def test_request_through_one_worker_is_served_by_the_other(workers: Workers) -> None:
    for n in range(20):
        kind, reply, _ = workers.ask({"n": n})
        assert kind == "reply"
        assert reply == {"n": n, "pid": workers.holder.pid}
    assert reply["pid"] != workers.web_pid
    workers.commands.put(("event", "", {}, WAIT))
    kind, event, _ = workers.results.get(timeout=2 * WAIT)
    assert (kind, event) == ("event", {"served": 0})


def test_nobody_serves_times_out(workers: Workers) -> None:
    kind, _, elapsed = workers.ask({"n": 1}, timeout=2.0, channel="bridge:nobody")
    assert kind == "NoServer"  # a BusTimeout, raised at once
    assert elapsed < 2.0


def test_served_channel_that_goes_away_times_out_not_hangs(workers: Workers) -> None:
    workers.commands.put(("request", workers.channel, {"n": 1, "hang": True}, 2.0))
    time.sleep(0.5)  # the request is in flight, the holder is inside its handler
    workers.holder.kill()  # the worker holding the bridge dies
    workers.holder.join(WAIT)
    kind, _, elapsed = workers.results.get(timeout=WAIT)
    assert kind == "BusTimeout"
    assert elapsed >= 2.0  # it waited its timeout out: it neither hung nor gave up early
    kind, _, elapsed = workers.ask({"n": 2}, timeout=2.0)
    assert kind == "NoServer"  # Redis dropped the dead worker's subscription
    assert elapsed < 2.0
