"""Nonces in Redis: single use across store instances, expiry, the bound, Redis down."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.jlis import TEST_ORIGIN, TEST_SECRET, FakeClock
from tests.support.services import REDIS_URL, redis_up
from webapp.jpki import (
    ChallengeRecord,
    ChallengeService,
    InMemoryNonceStore,
    NonceStoreFull,
    NonceStoreUnavailable,
    Reason,
    VerificationError,
    nonce_store_from_settings,
)
from webapp.jpki.redis_nonces import RedisNonceStore

DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
RECORD = ChallengeRecord("login", "counter-1", 1_800_000_000.0, 1_800_000_300.0)


@pytest.fixture(scope="module", autouse=True)
def _need_redis() -> None:
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:nonce:{uuid.uuid4().hex}:"
    yield prefix
    cleaner = RedisNonceStore.from_url(REDIS_URL, prefix=prefix)
    try:
        keys = list(cleaner._client.scan_iter(match=f"{prefix}*"))
        if keys:
            cleaner._client.delete(*keys)
    finally:
        cleaner.close()


def store(prefix: str, **options: int) -> RedisNonceStore:
    """A store instance of its own (its own connection pool, as another worker's)."""
    return RedisNonceStore.from_url(REDIS_URL, prefix=prefix, **options)


def nonce() -> str:
    return uuid.uuid4().hex


def test_record_round_trips_and_is_single_use(prefix: str) -> None:
    s, n = store(prefix), nonce()
    s.put(n, RECORD, 60)
    assert s.take(n) == RECORD
    assert s.take(n) is None
    assert s.take(nonce()) is None


def test_another_instance_takes_what_one_wrote(prefix: str) -> None:
    worker_a, worker_b, n = store(prefix), store(prefix), nonce()
    worker_a.put(n, RECORD, 60)
    assert worker_b.take(n) == RECORD
    assert worker_a.take(n) is None


def test_a_nonce_is_never_overwritten(prefix: str) -> None:
    s, n = store(prefix), nonce()
    s.put(n, RECORD, 60)
    with pytest.raises(ValueError, match="already stored"):
        s.put(n, ChallengeRecord("pay", "shop-1", 0.0, 1.0), 60)
    assert s.take(n) == RECORD


def test_entries_expire_in_redis(prefix: str) -> None:
    s, n = store(prefix), nonce()
    s.put(n, RECORD, 0.05)
    time.sleep(0.15)
    assert s.take(n) is None


def test_service_on_redis_tells_expired_from_unknown(prefix: str) -> None:
    clock = FakeClock(1_800_000_000.0)
    service = ChallengeService(store(prefix), ttl_s=120, clock=clock)
    challenge = service.issue("login", "counter-1")
    clock.advance(121)  # past the nonce's life, inside the store's grace
    with pytest.raises(VerificationError) as info:
        service.take(challenge.nonce)
    assert info.value.reason is Reason.NONCE_EXPIRED
    with pytest.raises(VerificationError) as again:
        service.take(challenge.nonce)
    assert again.value.reason is Reason.NONCE_UNKNOWN_OR_USED


def test_concurrent_takes_have_exactly_one_winner(prefix: str) -> None:
    n = nonce()
    store(prefix).put(n, RECORD, 60)
    workers = [store(prefix) for _ in range(16)]
    barrier = threading.Barrier(len(workers))
    results: list[ChallengeRecord | None] = []
    lock = threading.Lock()

    def racer(s: RedisNonceStore) -> None:
        barrier.wait()
        got = s.take(n)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=racer, args=(s,)) for s in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert [r for r in results if r is not None] == [RECORD]


def test_the_bound_refuses_new_entries_until_some_go(prefix: str) -> None:
    worker_a, worker_b = store(prefix, max_entries=3), store(prefix, max_entries=3)
    nonces = [nonce() for _ in range(3)]
    for i, n in enumerate(nonces):
        (worker_a if i % 2 else worker_b).put(n, RECORD, 60)
    assert len(worker_a) == 3
    with pytest.raises(NonceStoreFull):
        worker_b.put(nonce(), RECORD, 60)  # the bound is shared by the workers
    assert worker_a.take(nonces[0]) == RECORD  # a take frees its place
    worker_b.put(nonce(), RECORD, 60)
    with pytest.raises(NonceStoreFull):
        worker_a.put(nonce(), RECORD, 60)


def test_the_bound_forgets_expired_entries(prefix: str) -> None:
    s = store(prefix, max_entries=2)
    s.put(nonce(), RECORD, 0.05)
    s.put(nonce(), RECORD, 0.05)
    with pytest.raises(NonceStoreFull):
        s.put(nonce(), RECORD, 60)
    time.sleep(0.15)
    s.put(nonce(), RECORD, 60)  # the expired two were purged from the index
    assert len(s) == 1


def test_redis_down_is_a_typed_retryable_refusal() -> None:
    down = RedisNonceStore.from_url(DOWN_URL)
    with pytest.raises(NonceStoreUnavailable):
        down.put(nonce(), RECORD, 60)
    with pytest.raises(NonceStoreUnavailable):
        down.take(nonce())
    service = ChallengeService(down)
    with pytest.raises(NonceStoreUnavailable):
        service.issue("login", "counter-1")  # no nonce is handed out
    with pytest.raises(VerificationError) as info:
        service.take("A" * 43)
    assert info.value.reason is Reason.NONCE_STORE_UNAVAILABLE
    assert info.value.retryable


def test_a_take_refused_while_down_never_makes_a_nonce_reusable(prefix: str) -> None:
    up, n = store(prefix), nonce()
    up.put(n, RECORD, 60)
    down = RedisNonceStore.from_url(DOWN_URL, prefix=prefix)
    with pytest.raises(NonceStoreUnavailable):
        down.take(n)
    assert up.take(n) == RECORD  # accepted once, after Redis is back...
    assert up.take(n) is None  # ...and only once


def test_settings_pick_the_store() -> None:
    assert isinstance(nonce_store_from_settings({"BUS_URL": "memory://"}), InMemoryNonceStore)
    assert isinstance(nonce_store_from_settings({}), InMemoryNonceStore)
    picked = nonce_store_from_settings({"BUS_URL": REDIS_URL, "NONCE_MAX_ENTRIES": 7})
    assert isinstance(picked, RedisNonceStore) and picked.max_entries == 7
    picked.close()


def test_the_app_uses_the_redis_store_when_the_bus_is_redis(tmp_path: Path) -> None:
    from webapp import create_app
    from webapp.bus import get_bus
    from webapp.cardflow import verifier_for

    def app_with(bus_url: str) -> object:
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
                "SECRET_KEY": "test",
                "TESTING": True,
                "BUS_URL": bus_url,
                "PLATFORM_ORIGIN": TEST_ORIGIN,
                "CARD_KEY_SECRET": TEST_SECRET.decode(),
            }
        )
        try:
            return verifier_for(app).challenges.store
        finally:
            get_bus(app).close()

    redis_store = app_with(REDIS_URL)
    assert isinstance(redis_store, RedisNonceStore)
    redis_store.close()
    assert isinstance(app_with("memory://"), InMemoryNonceStore)
