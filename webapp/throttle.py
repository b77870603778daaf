"""Attempt limits that hold under parallel requests: take an attempt first, then keep it
or give it back.

A throttle that checks a count and adds to it after the check lets every request that
arrives before the first failure is written through: 30 parallel wrong passwords were
all checked against a limit of 5. Here an attempt is *taken* before anything is checked,
with `limits`' moving-window `hit()`, which is one atomic step (a Lua script in Redis, a
lock in process memory): of N parallel attempts against a budget of k, exactly k get a
slot, on every worker, and the rest are refused unchecked. What the attempt turns out to
be decides what happens to its slot afterwards:

- a failure (wrong password, wrong code) keeps it: it counts for the whole window;
- a success, or a request that was no attempt at all (a malformed body, a crash), gives
  it back (`give_back`), so only failures stay counted, as before;
- a success may also forget a key's failures outright (`clear`).

Built on `limits` (Flask-Limiter's engine) rather than Flask-Limiter itself: Flask-Limiter
counts requests to a route, keyed before the view runs, and with `deduct_when` (count
failures only) it tests before the view and hits after it, the very race above. Our keys
need the parsed form (the login), the outcome decides keep or give back, and each
refusal is worded by its page. `limits` has no "give back" for a moving window; it is
one command on each of the two storages we use (`_give_back`), covered by tests.

Storage: Redis when the bus is Redis (every worker sees the same counts), else this
process's memory. In Redis every key starts with the deployment's prefix (BUS_PREFIX),
so two platforms on one Redis never share counts.

No Flask here: the domains build their throttles on this from their settings.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

DEFAULT_KEY_PREFIX = "ichimai:limits"


@dataclass(frozen=True)
class Budget:
    """At most `limit.amount` attempts within `limit`'s moving window, for one key."""

    limit: RateLimitItem
    namespace: str
    key: str

    @classmethod
    def of(cls, limit: str | RateLimitItem, namespace: str, key: str) -> Budget:
        """A budget from a limit such as "5 per 15 minutes"."""
        return cls(parse(limit) if isinstance(limit, str) else limit, namespace, key)

    @property
    def storage_key(self) -> str:
        """The key `limits` keeps this budget's window under (before the prefix)."""
        return self.limit.key_for(self.namespace, self.key)


def storage_uri(bus_url: str | None) -> str:
    """Redis when the bus is Redis, else this process's memory."""
    if bus_url and bus_url.startswith(("redis://", "rediss://", "redis+unix://")):
        return bus_url
    if bus_url and bus_url.startswith("unix://"):  # redis-py's spelling; limits' below
        return "redis+" + bus_url
    return "memory://"


def key_prefix(bus_prefix: str | None) -> str:
    """The Redis key prefix of the limits of the deployment whose bus prefix is given."""
    return f"{bus_prefix}limits" if bus_prefix else DEFAULT_KEY_PREFIX


def client_key(address: str | None) -> str:
    """The key a client address is counted under: IPv4 as it is, IPv6 by its /64.

    One subscriber gets a whole /64 (RFC 6177 and every ISP's practice), so counting
    single IPv6 addresses would give one attacker 2^64 fresh budgets.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SweptMemoryStorage(MemoryStorage):
    """`limits`' memory storage, its clean-up run inline at most every SWEEP_SECONDS.

    MemoryStorage starts a timer thread 10 ms after any hit that finds none running, to
    sweep every key: at fewer than 100 hits a second, that is one thread started (and one
    pass over every key) per throttled request, about a quarter of a millisecond of the
    request's time on a small machine. The windows do not need it: every hit and test
    compares its entries' times itself; the sweep only frees the memory of windows that
    ran out. So here it runs in the hit that finds the last one SWEEP_SECONDS old.
    (Overrides the one private hook MemoryStorage calls; tests/unit/webapp/test_throttle.py
    fails if a `limits` release renames it.)
    """

    SWEEP_SECONDS = 10.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._swept = clock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # the name MemoryStorage calls
        now = self._clock()
        if now - self._swept >= self.SWEEP_SECONDS:
            self._swept = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class AttemptLimiter:
    """Budgets of attempts in moving windows, in Redis or this process's memory.

    `take` before checking; then `give_back` what was no failure. `clock` must be the
    clock `limits` reads (time.time); it is a parameter so that the Retry-After
    arithmetic and a test's fake clock agree.
    """

    def __init__(
        self,
        uri: str = "memory://",
        *,
        prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if uri == "memory://":
            self.storage: Storage = SweptMemoryStorage()
        else:
            self.storage = cast(Storage, storage_from_string(uri, key_prefix=prefix))
        if not isinstance(self.storage, RedisStorage | MemoryStorage):
            raise ValueError(f"attempt limits need Redis or memory storage, not {uri!r}")
        self._windows = MovingWindowRateLimiter(self.storage)
        self._clock = clock

    def take(self, *budgets: Budget) -> int:
        """Take one attempt from every budget, or from none: 0 when taken, else the
        seconds until every budget has room again (and nothing is taken).

        Each budget's step is atomic; when a later budget refuses, the earlier ones are
        given back, so a refused request never counts.
        """
        taken: list[Budget] = []
        for budget in budgets:
            if not self._windows.hit(budget.limit, budget.namespace, budget.key):
                self.give_back(*taken)
                return max(1, self.retry_after(*budgets))
            taken.append(budget)
        return 0

    def give_back(self, *budgets: Budget) -> None:
        """Return one taken attempt to each budget (it was no failure)."""
        for budget in budgets:
            _give_back(self.storage, budget.storage_key)

    def clear(self, *budgets: Budget) -> None:
        """Forget every attempt counted against these budgets."""
        for budget in budgets:
            self._windows.clear(budget.limit, budget.namespace, budget.key)

    def retry_after(self, *budgets: Budget) -> int:
        """Seconds until every budget has room for one more attempt: 0 when they have."""
        wait = 0.0
        for budget in budgets:
            if not self._windows.test(budget.limit, budget.namespace, budget.key):
                stats = self._windows.get_window_stats(budget.limit, budget.namespace, budget.key)
                wait = max(wait, stats.reset_time - self._clock(), 1.0)
        return math.ceil(wait)

    def used(self, budget: Budget) -> int:
        """Attempts counted against a budget in its window now."""
        stats = self._windows.get_window_stats(budget.limit, budget.namespace, budget.key)
        return budget.limit.amount - stats.remaining

    def reset(self) -> None:
        """Forget every count under this limiter's prefix (tests, an operator's reset)."""
        self.storage.reset()


def _give_back(storage: Storage, key: str) -> None:
    """Drop the newest entry of a moving window (its list is kept newest first).

    The entry dropped may be a concurrent attempt's rather than ours: the count is the
    same, and the window's remaining entries are at most one request's duration older
    than they would have been.
    """
    if isinstance(storage, RedisStorage):
        storage.get_connection().lpop(storage.prefixed_key(key))
    elif isinstance(storage, MemoryStorage):
        with storage.locks[key]:
            events = storage.events.get(key)
            if events:
                del events[0]
    else:  # pragma: no cover - refused in AttemptLimiter.__init__
        raise TypeError(type(storage).__name__)


def limiter_from_settings(config: Mapping[str, Any]) -> AttemptLimiter:
    """The limiter a deployment's settings ask for: THROTTLE_STORAGE, else after BUS_URL,
    its Redis keys under BUS_PREFIX."""
    uri = config.get("THROTTLE_STORAGE") or storage_uri(config.get("BUS_URL"))
    return AttemptLimiter(str(uri), prefix=key_prefix(config.get("BUS_PREFIX")))


def app_limiter(extensions: dict[str, Any], config: Mapping[str, Any]) -> AttemptLimiter:
    """The app's one limiter, made by the first `init_app` that needs it (in create_app)."""
    if "attempt_limiter" not in extensions:
        extensions["attempt_limiter"] = limiter_from_settings(config)
    limiter: AttemptLimiter = extensions["attempt_limiter"]
    return limiter


def setting(config: dict[str, Any], name: str, default: str) -> str:
    """A limit from the app's settings, else ICHIMAI_<name>, else `default`; checked now."""
    value = str(config.setdefault(name, os.environ.get(f"ICHIMAI_{name}", default)))
    try:
        parse(value)
    except ValueError as exc:
        message = f"{name} (ICHIMAI_{name}) is not a limit such as '5 per hour': {value!r}"
        raise ValueError(message) from exc
    return value
