"""Card flows in Redis (`RedisFlowStore`): every worker serves every flow's next step.

Each record is a hash `{v: version, d: JSON}` with the record's time to live as its key's
PX. A put is one Lua script, so the compare-and-set is atomic on the server whatever
the number of workers: read the version, compare, write `v+1` and the value, set the
expiry. A record that expired is simply gone (version 0). Presence is a sorted set per
group (member -> deadline in ms, Redis server time), trimmed on every touch.

Redis unreachable gives FlowStoreUnavailable (the step fails, nothing moves on); an
out-of-memory refusal (`maxmemory` under `noeviction`, the recommended policy) is
FlowStoreFull. Under an evicting policy a record may vanish: the flow then ends
(SESSION_ENDED), it never goes on from a state it did not reach.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .store import (
    MAX_PRESENCE,
    FlowConflict,
    FlowStoreFull,
    FlowStoreUnavailable,
    Record,
    encode,
)

DEFAULT_PREFIX = "ichimai:flow:"
SOCKET_TIMEOUT_S = 2.0  # a down Redis must fail the step quickly, not hang the page

# KEYS: record. ARGV: expected version ('' = any), JSON, ttl ms.
# Returns the new version, or -1 when the expectation failed.
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then
  return -1
end
redis.call('HSET', KEYS[1], 'v', current + 1, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return current + 1
"""

# KEYS: presence set. ARGV: member, ttl ms, bound. Returns 1 when noted.
_TOUCH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: presence set. Returns how many members are here now.
_PRESENT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisFlowStore:
    """`FlowStore` in Redis, shared by workers (see webapp/cardflow/store.py)."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._client = client
        self._put = client.register_script(_PUT)
        self._touch = client.register_script(_TOUCH)
        self._present = client.register_script(_PRESENT)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisFlowStore:
        """A store on its own connection pool to `url` (redis://, rediss://, unix://)."""
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            # Reads and presence are safe to retry; a retried put whose first attempt
            # ran meets its own new version and fails the expectation: BUSY, not twice.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            client_name="ichimai-flows",
        )
        return cls(client, **options)

    def get(self, key: str) -> Record | None:
        """The live record under `key`, or None."""
        try:
            found = self._client.hmget(self._key(key), ["v", "d"])
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc
        version, data = found
        if version is None or data is None:
            return None
        try:
            return Record(int(version), json.loads(data))
        except (ValueError, TypeError):
            return None  # not one of our records: as if none

    def put(self, key: str, value: dict[str, Any], ttl: float, *, expect: int | None = None) -> int:
        """Compare-and-set `value` under `key` for `ttl` seconds; the new version."""
        text = encode(value)
        args = ["" if expect is None else str(expect), text, max(1, int(ttl * 1000))]
        try:
            version = int(self._put(keys=[self._key(key)], args=args))
        except redis.ResponseError as exc:
            if str(exc).startswith("OOM"):
                raise FlowStoreFull("Redis is out of memory") from exc
            raise FlowStoreUnavailable(f"Redis refused the flow: {exc}") from exc
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc
        if version < 0:
            raise FlowConflict(f"expected version {expect}")
        return version

    def delete(self, key: str) -> None:
        """Forget the record."""
        try:
            self._client.delete(self._key(key))
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc

    def touch_presence(self, group: str, member: str, ttl: float) -> None:
        """`member` of `group` is here for `ttl` seconds."""
        try:
            self._touch(
                keys=[self._presence_key(group)],
                args=[member, max(1, int(ttl * 1000)), MAX_PRESENCE],
            )
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc

    def drop_presence(self, group: str, member: str) -> None:
        """`member` left `group`."""
        try:
            self._client.zrem(self._presence_key(group), member)
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc

    def present(self, group: str) -> bool:
        """Whether any member of `group` is here now."""
        try:
            return int(self._present(keys=[self._presence_key(group)])) > 0
        except redis.RedisError as exc:
            raise FlowStoreUnavailable(f"Redis unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _key(self, key: str) -> str:
        return f"{self.prefix}r:{key}"

    def _presence_key(self, group: str) -> str:
        return f"{self.prefix}p:{group}"
