"""RedisBus specifics: two workers (two buses) meeting through Redis in one process."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from webapp.bus import Bus, BusError, BusTimeout, NoServer, make_bus

BusFactory = Callable[[], Bus]

WAIT = 5.0


def test_publish_reaches_other_worker_once_and_own_worker_once(
    redis_bus_factory: BusFactory,
) -> None:
    a, b = redis_bus_factory(), redis_bus_factory()
    qa: queue.Queue[dict[str, Any]] = queue.Queue()
    qb: queue.Queue[dict[str, Any]] = queue.Queue()
    a.subscribe("tab:1", qa.put)
    b.subscribe("tab:1", qb.put)
    a.publish("tab:1", {"step": "card-read"})
    assert qa.get(timeout=WAIT) == {"step": "card-read"}
    assert qb.get(timeout=WAIT) == {"step": "card-read"}
    for q in (qa, qb):
        with pytest.raises(queue.Empty):
            q.get(timeout=0.3)


def test_request_served_by_the_other_worker(redis_bus_factory: BusFactory) -> None:
    holder, web = redis_bus_factory(), redis_bus_factory()
    holder.serve("bridge:abc", lambda m: {"who": "holder", "n": m["n"]})
    for n in range(10):
        assert web.request("bridge:abc", {"n": n}, WAIT) == {"who": "holder", "n": n}


def test_worker_closing_mid_request_gives_timeout_not_hang(
    redis_bus_factory: BusFactory,
) -> None:
    holder, web = redis_bus_factory(), redis_bus_factory()
    entered = threading.Event()

    def slow(message: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        time.sleep(2)
        return {}

    holder.serve("bridge:x", slow)
    errors: queue.Queue[BaseException] = queue.Queue()

    def ask() -> None:
        try:
            web.request("bridge:x", {}, timeout=1.0)
        except BaseException as exc:
            errors.put(exc)

    t = threading.Thread(target=ask)
    start = time.monotonic()
    t.start()
    assert entered.wait(WAIT)
    holder.close()
    t.join(WAIT)
    assert isinstance(errors.get(timeout=1), BusTimeout)
    assert time.monotonic() - start < 2
    with pytest.raises(NoServer):
        web.request("bridge:x", {}, timeout=1.0)


def test_foreign_frames_are_dropped(redis_bus_factory: BusFactory, redis_url: str) -> None:
    a = redis_bus_factory()
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    a.subscribe("c", q.put)
    a.serve("s", lambda m: {"ok": 1})
    client = redis.Redis.from_url(redis_url)
    prefix = a._prefix  # type: ignore[attr-defined]
    for frame in (b"garbage", b"{}\n" + b"x" * 10_000, b'{"w":"other"}\nnot json', b"[1]\n{}"):
        client.publish(f"{prefix}pub:c", frame)
        client.publish(f"{prefix}srv:s", frame)
        client.publish(a._reply_channel, frame)  # type: ignore[attr-defined]
    client.close()
    b = redis_bus_factory()
    b.publish("c", {"after": True})
    assert q.get(timeout=WAIT) == {"after": True}
    assert b.request("s", {}, WAIT) == {"ok": 1}


def test_unreachable_redis_is_a_bus_error() -> None:
    with pytest.raises(BusError):
        make_bus("redis://127.0.0.1:1/0")


def test_make_bus_redis(redis_url: str) -> None:
    bus = make_bus(redis_url, prefix="test:make-bus:")
    try:
        bus.serve("x", lambda m: m)
        assert bus.request("x", {"a": 1}, WAIT) == {"a": 1}
    finally:
        bus.close()


def test_listener_reconnects_after_the_connection_drops(
    redis_bus_factory: BusFactory, redis_url: str
) -> None:
    a, b = redis_bus_factory(), redis_bus_factory()
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    a.subscribe("c", q.put)
    a.serve("s", lambda m: {"served": True})
    admin = redis.Redis.from_url(redis_url)
    name = a.client_name  # type: ignore[attr-defined]
    killed = [
        admin.client_kill_filter(_id=c["id"])
        for c in admin.client_list()
        if c.get("name") == name and c.get("sub", "0") != "0"
    ]
    admin.close()
    assert killed, "the listener's PubSub connection was found"
    deadline = time.monotonic() + 10
    while True:
        b.publish("c", {"after": "reconnect"})
        try:
            assert q.get(timeout=0.2) == {"after": "reconnect"}
            break
        except queue.Empty:
            assert time.monotonic() < deadline, "no delivery after reconnecting"
    assert b.request("s", {}, WAIT) == {"served": True}


def stop_serving_locally_only(bus: Bus, channel: str) -> None:
    """What a worker looks like between dropping a channel and Redis taking its
    unsubscribe: still subscribed on Redis, no handler any more."""
    hub = bus._hub  # type: ignore[attr-defined]
    for token in list(hub._servers.get(channel, {})):
        hub.remove("srv", channel, token)


def test_a_worker_that_stopped_serving_declines_at_once(redis_bus_factory: BusFactory) -> None:
    """The landed bus dropped such a request silently: the requester waited its whole
    timeout (a restarted bridge "not ready" for 10 s in the scaled counter test)."""
    stale, web = redis_bus_factory(), redis_bus_factory()
    stale.serve("bridge:y", lambda m: {"who": "stale"})
    stop_serving_locally_only(stale, "bridge:y")
    started = time.monotonic()
    with pytest.raises(NoServer):
        web.request("bridge:y", {}, timeout=5.0)
    assert time.monotonic() - started < 2.0


def test_a_decline_never_hides_another_workers_answer(redis_bus_factory: BusFactory) -> None:
    stale, holder, web = redis_bus_factory(), redis_bus_factory(), redis_bus_factory()
    stale.serve("bridge:z", lambda m: {"who": "stale"})
    stop_serving_locally_only(stale, "bridge:z")
    holder.serve("bridge:z", lambda m: {"who": "holder", "n": m["n"]})
    for n in range(20):
        assert web.request("bridge:z", {"n": n}, WAIT) == {"who": "holder", "n": n}
