"""Attempt limits (webapp/throttle.py): taken atomically before the check, given back
when no failure, in process memory and in Redis, under the deployment's prefix."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import ed25519
from limits.storage import memory as limits_memory
from limits.strategies import MovingWindowRateLimiter

from bridge import seal
from bridge.pairing import auth_public_b64u
from tests.support.services import REDIS_URL, redis_up
from webapp.terminals.testing import build_app
from webapp.throttle import (
    AttemptLimiter,
    Budget,
    SweptMemoryStorage,
    client_key,
    key_prefix,
    limiter_from_settings,
    setting,
)

needs_redis = pytest.mark.skipif(not redis_up(), reason=f"Redis not reachable at {REDIS_URL}")


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def limiter(request: pytest.FixtureRequest) -> Iterator[AttemptLimiter]:
    if request.param == "memory":
        yield AttemptLimiter()
        return
    made = AttemptLimiter(REDIS_URL, prefix=f"test-throttle-{uuid.uuid4().hex}:limits")
    try:
        yield made
    finally:
        made.reset()


def test_parallel_takes_never_pass_the_budget(limiter: AttemptLimiter) -> None:
    budget = Budget.of("5 per 15 minutes", "t", "clerk")
    barrier = threading.Barrier(40)
    waits: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        barrier.wait(30)
        wait = limiter.take(budget)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(waits) == 40
    assert waits.count(0) == 5
    assert all(0 < w <= 900 for w in waits if w)
    assert limiter.used(budget) == 5


def test_giving_back_makes_room_and_clearing_forgets(limiter: AttemptLimiter) -> None:
    budget = Budget.of("2 per hour", "t", "x")
    assert limiter.take(budget) == 0
    assert limiter.take(budget) == 0
    assert limiter.take(budget) > 0
    limiter.give_back(budget)
    assert limiter.used(budget) == 1
    assert limiter.take(budget) == 0
    limiter.clear(budget)
    assert limiter.used(budget) == 0
    limiter.give_back(budget)  # nothing to give back: nothing happens
    assert limiter.used(budget) == 0


def test_a_refused_take_takes_from_no_budget(limiter: AttemptLimiter) -> None:
    small, large = Budget.of("1 per hour", "t", "small"), Budget.of("9 per hour", "t", "large")
    assert limiter.take(large, small) == 0
    for _ in range(3):
        assert limiter.take(large, small) > 0
    assert limiter.used(large) == 1


@needs_redis
def test_two_deployments_on_one_redis_do_not_share_counts(tmp_path: Path) -> None:
    """Pairing failures on one platform leave another platform's budget alone (the
    limits' keys carry each deployment's BUS_PREFIX)."""
    apps = [
        build_app(
            f"sqlite:///{tmp_path / f'{name}.db'}",
            bus_url=REDIS_URL,
            bus_prefix=f"test-{name}-{uuid.uuid4().hex}:",
            extra={"PAIR_LIMIT_PER_IP": "2 per hour"},
        )
        for name in ("first", "second")
    ]
    try:
        first, second = (app.test_client() for app in apps)
        assert [pair_wrong(first) for _ in range(3)] == [403, 403, 429]
        assert pair_wrong(second) == 403
        keys = redis.Redis.from_url(REDIS_URL).keys(f"{apps[0].config['BUS_PREFIX']}limits:*")
        assert keys  # under the first platform's own prefix
    finally:
        for app in apps:
            app.extensions["attempt_limiter"].reset()
            app.extensions["bus"].close()


def pair_wrong(client: Any) -> int:
    body = {
        "code": "ABCDE-FGHJK",
        "auth_public_key": auth_public_b64u(ed25519.Ed25519PrivateKey.generate()),
        "seal_public_key": seal.public_key_b64u(seal.generate_device_key().public_key()),
    }
    return int(client.post("/api/v1/bridges/pair", json=body).status_code)


def test_the_prefix_follows_the_bus_prefix() -> None:
    assert key_prefix("ichimai:city-a:") == "ichimai:city-a:limits"
    assert key_prefix(None) == "ichimai:limits"
    assert isinstance(limiter_from_settings({"BUS_URL": "memory://"}), AttemptLimiter)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("", "unknown"),
        ("not an address", "not an address"),
    ],
)
def test_client_keys(address: str | None, key: str) -> None:
    assert client_key(address) == key


def test_a_bad_limit_setting_names_itself() -> None:
    with pytest.raises(ValueError, match="PAIR_LIMIT_PER_IP"):
        setting({"PAIR_LIMIT_PER_IP": "ten a minute"}, "PAIR_LIMIT_PER_IP", "10 per minute")
    assert setting({}, "X_LIMIT", "3 per hour") == "3 per hour"


def test_memory_hits_start_no_thread_and_windows_still_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """limits' memory storage started a timer thread for nearly every hit (to sweep every
    key): here no hit starts one, the sweep runs inline every SWEEP_SECONDS, and what it
    frees is only the memory of windows that ran out."""
    now = [1000.0]  # the storage's wall clock (limits reads time.time) and its sweep clock
    monkeypatch.setattr(limits_memory, "time", SimpleNamespace(time=lambda: now[0]))
    storage = SweptMemoryStorage(clock=lambda: now[0])
    assert hasattr(storage, "_MemoryStorage__schedule_expiry")  # the hook MemoryStorage calls
    assert hasattr(storage, "_MemoryStorage__expire_events")
    limiter = AttemptLimiter(clock=lambda: now[0])
    limiter.storage = storage
    limiter._windows = MovingWindowRateLimiter(storage)
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: (started.append(t), real_start(t)))
    short = Budget.of("2 per 1 second", "t", "sweep")
    assert limiter.take(short) == 0 and limiter.take(short) == 0
    assert limiter.take(short) > 0  # the window holds
    assert started == []
    assert storage.events.get(short.storage_key)
    now[0] += 1.5  # the window runs out
    assert limiter.take(short) == 0  # room again without any sweep
    now[0] += SweptMemoryStorage.SWEEP_SECONDS
    limiter.take(Budget.of("2 per 1 second", "t", "other"))  # this hit sweeps
    assert not storage.events.get(short.storage_key)  # the ran-out window is freed
    assert started == []
