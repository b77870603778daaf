"""The local services tests talk to (Redis at 127.0.0.1:6379 unless told otherwise)."""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("ICHIMAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_up() -> bool:
    """True when the test Redis answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def require_redis() -> None:
    """Skip the test when the test Redis is down (fail under CI, where it must be up)."""
    import pytest

    if redis_up():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis not reachable at {REDIS_URL} on CI")
    pytest.skip(f"Redis not reachable at {REDIS_URL}")
