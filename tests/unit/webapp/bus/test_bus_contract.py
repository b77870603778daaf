"""The `Bus` contract, run on InProcessBus and RedisBus alike."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from webapp.bus import (
    BadMessage,
    Bus,
    BusClosed,
    BusHandlerError,
    BusTimeout,
    InProcessBus,
    NoServer,
    make_bus,
)

WAIT = 5.0


def collector() -> tuple[queue.Queue[dict[str, Any]], Any]:
    """A queue and a callback that puts every message on it."""
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    return q, q.put


def test_publish_reaches_every_subscriber_in_order(bus: Bus) -> None:
    q1, cb1 = collector()
    q2, cb2 = collector()
    bus.subscribe("counter:7", cb1)
    bus.subscribe("counter:7", cb2)
    for i in range(20):
        bus.publish("counter:7", {"i": i})
    for q in (q1, q2):
        assert [q.get(timeout=WAIT)["i"] for _ in range(20)] == list(range(20))
        with pytest.raises(queue.Empty):
            q.get(timeout=0.2)  # exactly once: no echo of our own message


def test_each_subscriber_gets_its_own_copy(bus: Bus) -> None:
    seen: queue.Queue[dict[str, Any]] = queue.Queue()

    def mutate(message: dict[str, Any]) -> None:
        message["list"].append("mutated")
        seen.put(message)

    q, cb = collector()
    bus.subscribe("c", mutate)
    bus.subscribe("c", cb)
    original = {"list": [1]}
    bus.publish("c", original)
    seen.get(timeout=WAIT)
    assert q.get(timeout=WAIT) == {"list": [1]}
    assert original == {"list": [1]}


def test_unsubscribe_stops_delivery_and_is_idempotent(bus: Bus) -> None:
    q, cb = collector()
    sub = bus.subscribe("c", cb)
    bus.publish("c", {"n": 1})
    assert q.get(timeout=WAIT) == {"n": 1}
    sub.unsubscribe()
    sub.unsubscribe()
    bus.publish("c", {"n": 2})
    with pytest.raises(queue.Empty):
        q.get(timeout=0.3)


def test_failing_callback_does_not_stop_others(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    def boom(message: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    q, cb = collector()
    bus.subscribe("c", boom)
    bus.subscribe("c", cb)
    bus.publish("c", {"a": 1})
    bus.publish("c", {"a": 2})
    assert [q.get(timeout=WAIT)["a"] for _ in range(2)] == [1, 2]
    assert "callback failed" in caplog.text


def test_publish_without_subscribers_is_fine(bus: Bus) -> None:
    bus.publish("nobody-listens", {"x": 1})


def test_request_reply(bus: Bus) -> None:
    bus.serve("bridge:1", lambda m: {"echo": m["n"] * 2})
    assert bus.request("bridge:1", {"n": 21}, timeout=WAIT) == {"echo": 42}


def test_request_without_server_raises_no_server_at_once(bus: Bus) -> None:
    start = time.monotonic()
    with pytest.raises(NoServer):
        bus.request("bridge:none", {}, timeout=10)
    assert time.monotonic() - start < 2
    assert issubclass(NoServer, BusTimeout)


def test_slow_handler_times_out(bus: Bus) -> None:
    release = threading.Event()

    def slow(message: dict[str, Any]) -> dict[str, Any]:
        release.wait(WAIT)
        return {}

    bus.serve("slow", slow)
    start = time.monotonic()
    with pytest.raises(BusTimeout):
        bus.request("slow", {}, timeout=0.3)
    assert 0.3 <= time.monotonic() - start < 2
    release.set()


def test_handlers_run_concurrently(bus: Bus) -> None:
    """Eight requests in flight are handled at once: each handler waits until all eight
    have started (handled one at a time, the first would wait in vain and fail). No clock:
    a loaded machine is slower, not wrong."""
    all_in = threading.Barrier(8)

    def gathered(message: dict[str, Any]) -> dict[str, Any]:
        all_in.wait(timeout=WAIT)
        return {"n": message["n"]}

    bus.serve("gathered", gathered)
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(bus.request("gathered", {"n": n}, WAIT)["n"])
        )
        for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not all_in.broken
    assert sorted(results) == list(range(8))


@pytest.mark.parametrize(
    "handler",
    [
        lambda m: 1 / 0,
        lambda m: "not a dict",
        lambda m: {"too": "x" * 10_000},
    ],
    ids=["raises", "not-a-dict", "too-large"],
)
def test_handler_failures_become_bus_handler_error(bus: Bus, handler: Any) -> None:
    bus.serve("bad", handler)
    with pytest.raises(BusHandlerError):
        bus.request("bad", {}, timeout=WAIT)


def test_unserve_then_no_server(bus: Bus) -> None:
    served = bus.serve("x", lambda m: {})
    assert bus.request("x", {}, WAIT) == {}
    served.unsubscribe()
    with pytest.raises(BusTimeout):
        bus.request("x", {}, timeout=0.5)


@pytest.mark.parametrize(
    "message",
    [{"big": "x" * 5000}, ["not", "a", "dict"], {"nan": float("nan")}, {"set": {1, 2}}],
    ids=["too-large", "not-a-dict", "nan", "not-json"],
)
def test_bad_messages_are_refused(bus: Bus, message: Any) -> None:
    with pytest.raises(BadMessage):
        bus.publish("c", message)
    bus.serve("c", lambda m: {})
    with pytest.raises(BadMessage):
        bus.request("c", message, timeout=WAIT)


def test_namespaces_are_separate(bus: Bus) -> None:
    q, cb = collector()
    bus.subscribe("same", cb)
    with pytest.raises(NoServer):
        bus.request("same", {}, timeout=0.5)
    bus.serve("same", lambda m: {"served": True})
    bus.publish("same", {"published": True})
    assert q.get(timeout=WAIT) == {"published": True}
    assert bus.request("same", {}, WAIT) == {"served": True}


def test_close_wakes_pending_requests_and_refuses_later_calls(bus: Bus) -> None:
    release = threading.Event()

    def hang(message: dict[str, Any]) -> dict[str, Any]:
        release.wait(WAIT)
        return {}

    bus.serve("hang", hang)
    errors: queue.Queue[BaseException] = queue.Queue()

    def ask() -> None:
        try:
            bus.request("hang", {}, timeout=10)
        except BaseException as exc:
            errors.put(exc)

    t = threading.Thread(target=ask)
    t.start()
    time.sleep(0.2)
    bus.close()
    t.join(WAIT)
    assert isinstance(errors.get(timeout=1), BusClosed)
    release.set()
    bus.close()  # idempotent
    with pytest.raises(BusClosed):
        bus.publish("c", {})
    with pytest.raises(BusClosed):
        bus.request("c", {}, timeout=1)
    with pytest.raises(BusClosed):
        bus.subscribe("c", lambda m: None)


def test_many_threads_at_once(bus: Bus) -> None:
    bus.serve("echo", lambda m: m)
    q, cb = collector()
    bus.subscribe("fan", cb)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                assert bus.request("echo", {"n": n, "i": i}, WAIT) == {"n": n, "i": i}
                bus.publish("fan", {"n": n, "i": i})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    got = {(m["n"], m["i"]) for m in (q.get(timeout=WAIT) for _ in range(160))}
    assert len(got) == 160


def test_make_bus_picks_by_scheme() -> None:
    bus = make_bus("memory://", prefix="ignored:", max_bytes=100)
    assert isinstance(bus, InProcessBus)
    with pytest.raises(BadMessage):
        bus.publish("c", {"x": "y" * 100})
    bus.close()
    with pytest.raises(ValueError, match="scheme"):
        make_bus("kafka://localhost")


def test_handler_queue_is_bounded(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.bus import hub

    monkeypatch.setattr(hub, "HANDLER_QUEUE_LIMIT", 2)
    release = threading.Event()

    def hang(message: dict[str, Any]) -> dict[str, Any]:
        release.wait(WAIT)
        return {}

    bus.serve("hang", hang)
    waiting = [threading.Thread(target=bus.request, args=("hang", {}, WAIT)) for _ in range(2)]
    for t in waiting:
        t.start()
    time.sleep(0.3)
    with pytest.raises(BusHandlerError, match="BusBusy"):
        bus.request("hang", {}, timeout=WAIT)
    release.set()
    for t in waiting:
        t.join()
    assert bus.request("hang", {}, timeout=WAIT) == {}


def test_delivery_queue_is_bounded(
    bus: Bus, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    block, entered = threading.Event(), threading.Event()
    q, cb = collector()

    def slow(message: dict[str, Any]) -> None:
        entered.set()
        block.wait(WAIT)
        cb(message)

    bus.subscribe("c", slow)
    bus.publish("c", {"n": 0})
    assert entered.wait(WAIT)
    monkeypatch.setattr(bus._hub._queue, "maxsize", 3)  # type: ignore[attr-defined]
    for n in range(1, 10):
        bus.publish("c", {"n": n})
    time.sleep(0.3)
    block.set()
    got = [q.get(timeout=WAIT)["n"] for _ in range(4)]
    assert got == [0, 1, 2, 3]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.3)
    assert "dropped" in caplog.text
