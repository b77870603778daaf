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
