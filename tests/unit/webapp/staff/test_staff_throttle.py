"""The sign-in throttle: counts failures per login and per IP, shared through Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.support.services import REDIS_URL, redis_up
from webapp.staff.throttle import LoginThrottle


def test_memory_throttle_counts_failures_only() -> None:
    t = LoginThrottle("memory://", per_login="3 per 15 minutes", per_ip="5 per 15 minutes")
    for _ in range(3):
        assert not t.blocked("198.51.100.1", "clerk")
        t.failed("198.51.100.1", "clerk")
    assert t.blocked("198.51.100.1", "clerk")
    assert not t.blocked("198.51.100.1", "other")  # per-IP budget not spent yet
    t.failed("198.51.100.1", "a")
    t.failed("198.51.100.1", "b")
    assert t.blocked("198.51.100.1", "other")  # 5 failures from one IP
    assert not t.blocked("198.51.100.2", "other")


@pytest.mark.skipif(not redis_up(), reason=f"Redis not reachable at {REDIS_URL}")
def test_redis_throttle_is_shared_by_workers() -> None:
    login = f"clerk-{uuid.uuid4().hex}"
    ip = f"ip-{uuid.uuid4().hex}"
    worker_a = LoginThrottle(REDIS_URL, per_login="2 per 15 minutes")
    worker_b = LoginThrottle(REDIS_URL, per_login="2 per 15 minutes")
    try:
        worker_a.failed(ip, login)
        worker_b.failed(ip, login)
        assert worker_a.blocked(ip, login) and worker_b.blocked(ip, login)
        worker_b.succeeded(login)
        assert not worker_a.blocked(ip, login)
    finally:
        worker_a.succeeded(login)
        worker_a._limiter.clear(worker_a.per_ip, "staff-login-ip", ip)
