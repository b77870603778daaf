"""Failure throttles: staff sign-in (per IP, per login) and bridge pairing (per IP, all).

Built on `limits` (Flask-Limiter's engine) so that the counts live in Redis when the
platform runs several workers (BUS_URL redis://...), and in process memory otherwise.
Only failures count; a refused attempt is not counted again, so a blocked client gets
back in once its oldest failure leaves the moving window. `retry_after` says when.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import cast

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

# One budget: (limit, namespace, key), e.g. (parse("20 per 15 minutes"), "staff-login-ip", ip).
Budget = tuple[RateLimitItem, str, str]


def storage_uri(bus_url: str | None) -> str:
    """Redis when the bus is Redis, else this process's memory."""
    if bus_url and bus_url.startswith(("redis://", "rediss://", "redis+unix://")):
        return bus_url
    if bus_url and bus_url.startswith("unix://"):  # redis-py's spelling; limits' below
        return "redis+" + bus_url
    return "memory://"


class FailureThrottle:
    """Moving-window failure counts under named budgets, in Redis or this process.

    `clock` must be the clock `limits` reads (time.time); it is a parameter so that the
    Retry-After arithmetic and a test's fake clock agree. `storage_options` go to the
    `limits` storage (e.g. `key_prefix` for Redis).
    """

    def __init__(
        self,
        uri: str = "memory://",
        *,
        clock: Callable[[], float] = time.time,
        **storage_options: str,
    ) -> None:
        # sync storages only
        self.storage = cast(Storage, storage_from_string(uri, **storage_options))
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._clock = clock

    def retry_after(self, *budgets: Budget) -> int:
        """Seconds until another attempt is allowed: 0 when every budget has room."""
        wait = 0.0
        for item, namespace, key in budgets:
            if not self._limiter.test(item, namespace, key):
                reset = self._limiter.get_window_stats(item, namespace, key).reset_time
                wait = max(wait, reset - self._clock(), 1.0)
        return math.ceil(wait)

    def hit(self, *budgets: Budget) -> None:
        """Count one failure against each budget."""
        for item, namespace, key in budgets:
            self._limiter.hit(item, namespace, key)

    def clear(self, *budgets: Budget) -> None:
        """Forget the failures counted against these budgets."""
        for item, namespace, key in budgets:
            self._limiter.clear(item, namespace, key)


class LoginThrottle(FailureThrottle):
    """Refuses logins after too many failures from one IP or against one login."""

    def __init__(
        self,
        uri: str = "memory://",
        per_login: str = "5 per 15 minutes",
        per_ip: str = "20 per 15 minutes",
        *,
        clock: Callable[[], float] = time.time,
        **storage_options: str,
    ) -> None:
        super().__init__(uri, clock=clock, **storage_options)
        self.per_login: RateLimitItem = parse(per_login)
        self.per_ip: RateLimitItem = parse(per_ip)

    def blocked(self, ip: str, login: str) -> bool:
        """True when another attempt must be refused (HTTP 429)."""
        return self.retry_after(self._ip(ip), self._login(login)) > 0

    def failed(self, ip: str, login: str) -> None:
        """Count one failed attempt against both keys."""
        self.hit(self._ip(ip), self._login(login))

    def succeeded(self, login: str) -> None:
        """Forget the login's failures (the IP's stay, against spraying many logins)."""
        self.clear(self._login(login))

    def forget_ip(self, ip: str) -> None:
        """Forget an IP's failures (an operator's unblock; tests)."""
        self.clear(self._ip(ip))

    def _ip(self, ip: str) -> Budget:
        return (self.per_ip, "staff-login-ip", ip)

    def _login(self, login: str) -> Budget:
        return (self.per_login, "staff-login", login)


class PairingThrottle(FailureThrottle):
    """Refuses bridge pairing after too many wrong codes from one IP, or from everyone.

    A pairing code has 50 bits and lives 10 minutes; the per-IP budget makes guessing
    one pointless, the global ceiling bounds what many addresses (an IPv6 block, a
    botnet) can try together, at the price of pausing all pairing while it is spent.
    A success is not a failure and clears nothing: one good code does not buy guesses.
    """

    def __init__(
        self,
        uri: str = "memory://",
        per_ip: str = "10 per 10 minutes",
        overall: str = "500 per 10 minutes",
        *,
        clock: Callable[[], float] = time.time,
        **storage_options: str,
    ) -> None:
        super().__init__(uri, clock=clock, **storage_options)
        self.per_ip: RateLimitItem = parse(per_ip)
        self.overall: RateLimitItem = parse(overall)

    def retry_after_for(self, ip: str) -> int:
        """Seconds before this IP may try a code again (0: now)."""
        return self.retry_after(*self._budgets(ip))

    def failed(self, ip: str) -> None:
        """Count one wrong code from `ip` (and against the global ceiling)."""
        self.hit(*self._budgets(ip))

    def _budgets(self, ip: str) -> tuple[Budget, Budget]:
        return (self.per_ip, "bridge-pair-ip", ip), (self.overall, "bridge-pair", "all")
