"""Fixtures for the bus tests: every contract test runs on both implementations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.services import REDIS_URL, redis_up
from webapp.bus import Bus, InProcessBus


def require_redis() -> None:
    """Skip without Redis, except on CI (CI=true), where a missing Redis is a failure."""
    if not redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")


BusFactory = Callable[[], Bus]


@pytest.fixture
def redis_url() -> str:
    """The test Redis URL; skips (or fails on CI) when Redis is not reachable."""
    require_redis()
    return REDIS_URL


@pytest.fixture
def redis_bus_factory() -> Iterator[BusFactory]:
    """Make RedisBus workers sharing one key prefix unique to the test; closes them."""
    require_redis()
    from webapp.bus.redis_bus import RedisBus

    prefix = f"test:{uuid.uuid4().hex}:"
    made: list[Bus] = []

    def make() -> Bus:
        bus = RedisBus(REDIS_URL, prefix=prefix, max_bytes=4096)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    """One bus of each implementation (4 KiB message limit)."""
    if request.param == "memory":
        b: Bus = InProcessBus(max_bytes=4096)
        yield b
        b.close()
    else:
        yield request.getfixturevalue("redis_bus_factory")()
