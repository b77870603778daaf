"""Challenge nonces in Redis (`RedisNonceStore`): every worker sees every challenge.

With several workers the PIN prompt may be answered by another process than the one
that issued its challenge, so the records live in Redis, the platform's bus already:

- `put` is one Lua script: drop expired entries from the deadline index, refuse at the
  bound (NonceStoreFull), then `SET key record NX PX ttl` (never overwrite) and index it.
- `take` is one Lua script around `GETDEL` (Redis >= 6.2): of any number of concurrent
  takes, on any workers, exactly one gets the record; the others get None.
- Deadlines are Redis server time (`TIME`), so workers' clock skew does not matter; a
  record's life is its key's PX, so an expired nonce is simply gone.

The bound: a sorted set `<prefix>deadlines` (nonce -> deadline in ms) counts the live
entries, as `InMemoryNonceStore` does, so a flood of challenges is refused rather than
filling Redis (which the bus shares). Under memory pressure Redis' own policy may still
evict a record (with `volatile-*` or `allkeys-*`): the flow then fails closed (the nonce
is unknown), never open. `noeviction` is the recommended policy; an out-of-memory
refusal is reported as NonceStoreFull.

Redis unreachable (or failing) gives NonceStoreUnavailable, never a record. Both keys of
a script share the prefix; on Redis Cluster, put a hash tag in it (`ichimai:{nonce}:`).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .challenge import ChallengeRecord
from .errors import NonceStoreFull, NonceStoreUnavailable

DEFAULT_PREFIX = "ichimai:nonce:"
DEFAULT_MAX_ENTRIES = 100_000
SOCKET_TIMEOUT_S = 2.0  # a down Redis must fail the step quickly, not hang the page

# KEYS: record key, deadline index. ARGV: nonce, record JSON, ttl ms, max entries.
# Returns 1 stored, 0 the nonce exists already, -1 at the bound.
_PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return -1
end
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ttl) then
  return 0
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
"""

# KEYS: record key, deadline index. ARGV: nonce. Returns the record JSON or nil.
_TAKE = """
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return value
"""


class RedisNonceStore:
    """`NonceStore` in Redis, shared by workers; bounded at `max_entries` live nonces."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self.max_entries = max_entries
        self.prefix = prefix
        self._client = client
        self._index = f"{prefix}deadlines"
        self._put = client.register_script(_PUT)
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisNonceStore:
        """A store on its own connection pool to `url` (redis://, rediss://, unix://)."""
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            # A retried take is safe: if the first GETDEL ran, the retry finds nothing.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            client_name="ichimai-nonces",
        )
        return cls(client, **options)

    def put(self, nonce: str, record: ChallengeRecord, ttl: float) -> None:
        """Store `record` for `ttl` seconds; NonceStoreFull at the bound."""
        ttl_ms = max(1, int(ttl * 1000))
        data = json.dumps(record.to_dict(), separators=(",", ":"))
        try:
            stored = self._put(
                keys=[self._key(nonce), self._index], args=[nonce, data, ttl_ms, self.max_entries]
            )
        except redis.ResponseError as exc:
            if str(exc).startswith("OOM"):  # maxmemory reached under noeviction
                raise NonceStoreFull("Redis is out of memory") from exc
            raise NonceStoreUnavailable(f"Redis refused the challenge: {exc}") from exc
        except redis.RedisError as exc:
            raise NonceStoreUnavailable(f"Redis unreachable: {exc}") from exc
        if stored == -1:
            raise NonceStoreFull(f"{self.max_entries} challenges outstanding")
        if stored == 0:  # 256 random bits never collide; a caller reused a nonce
            raise ValueError("this nonce is already stored")

    def take(self, nonce: str) -> ChallengeRecord | None:
        """Remove and return the record (single use), or None if unknown, used or expired."""
        try:
            raw = self._take(keys=[self._key(nonce), self._index], args=[nonce])
        except redis.RedisError as exc:
            raise NonceStoreUnavailable(f"Redis unreachable: {exc}") from exc
        if raw is None:
            return None
        try:
            return ChallengeRecord.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None  # not one of our records: fail closed (the nonce is unknown)

    def __len__(self) -> int:
        """Live entries (expired ones are counted until the next put purges them)."""
        try:
            return int(self._client.zcard(self._index))
        except redis.RedisError as exc:
            raise NonceStoreUnavailable(f"Redis unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _key(self, nonce: str) -> str:
        return f"{self.prefix}n:{nonce}"
