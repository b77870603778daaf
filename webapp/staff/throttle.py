"""Login throttling: failed attempts counted per client IP and per login.

Built on `limits` (Flask-Limiter's engine) so that the counts live in Redis when the
platform runs several workers (BUS_URL redis://...), and in process memory otherwise.
Only failures count; a success clears the login's count.
"""

from __future__ import annotations

from typing import cast

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


def storage_uri(bus_url: str | None) -> str:
    """Redis when the bus is Redis, else this process's memory."""
    if bus_url and bus_url.startswith(("redis://", "rediss://", "redis+unix://")):
        return bus_url
    return "memory://"


class LoginThrottle:
    """Refuses logins after too many failures from one IP or against one login."""

    def __init__(
        self,
        uri: str = "memory://",
        per_login: str = "5 per 15 minutes",
        per_ip: str = "20 per 15 minutes",
    ) -> None:
        self.storage = cast(Storage, storage_from_string(uri))  # sync storages only
        self._limiter = MovingWindowRateLimiter(self.storage)
        self.per_login: RateLimitItem = parse(per_login)
        self.per_ip: RateLimitItem = parse(per_ip)

    def blocked(self, ip: str, login: str) -> bool:
        """True when another attempt must be refused (HTTP 429)."""
        return not (
            self._limiter.test(self.per_ip, "staff-login-ip", ip)
            and self._limiter.test(self.per_login, "staff-login", login)
        )

    def failed(self, ip: str, login: str) -> None:
        """Count one failed attempt against both keys."""
        self._limiter.hit(self.per_ip, "staff-login-ip", ip)
        self._limiter.hit(self.per_login, "staff-login", login)

    def succeeded(self, login: str) -> None:
        """Forget the login's failures (the IP's stay, against spraying many logins)."""
        self._limiter.clear(self.per_login, "staff-login", login)
