"""The sign-in throttle: per login and address, per address, and a per-login backstop;
attempts taken before the password check, shared through Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.support.services import REDIS_URL, redis_up
from webapp.staff.throttle import LoginThrottle
from webapp.throttle import AttemptLimiter

ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.1"


def throttle(uri: str = "memory://", prefix: str = "t", **limits: str) -> LoginThrottle:
    return LoginThrottle(AttemptLimiter(uri, prefix=prefix), **limits)


def fail(t: LoginThrottle, address: str, login: str) -> int:
    """One wrong password: its attempt is taken and kept; the wait if refused."""
    return t.begin(address, login)


def test_a_login_is_locked_only_from_the_address_that_failed() -> None:
    t = throttle(per_login_ip="3 per 15 minutes")
    for _ in range(3):
        assert fail(t, ATTACKER, "clerk") == 0
    assert t.begin(ATTACKER, "clerk") > 0  # the attacker's address is shut out of "clerk"
    assert t.begin(VICTIM, "clerk") == 0  # the person it belongs to is not
    t.succeeded(VICTIM, "clerk")
    assert t.begin(ATTACKER, "other") == 0  # nor is the attacker from other logins


def test_one_address_spraying_many_logins_is_stopped() -> None:
    t = throttle(per_ip="5 per 15 minutes")
    for i in range(5):
        assert fail(t, ATTACKER, f"login{i}") == 0
    assert t.begin(ATTACKER, "clerk") > 0
    assert t.begin(VICTIM, "clerk") == 0


def test_the_backstop_stops_many_addresses_on_one_login() -> None:
    t = throttle(per_login="6 per hour")
    for i in range(6):
        assert fail(t, f"192.0.2.{i}", "clerk") == 0
    assert t.begin("192.0.2.200", "clerk") > 0
    assert t.begin("192.0.2.200", "other") == 0


def test_a_success_counts_nothing_and_forgets_the_pairs_failures() -> None:
    t = throttle(per_login_ip="3 per 15 minutes", per_ip="6 per 15 minutes")
    assert fail(t, VICTIM, "clerk") == 0
    assert fail(t, VICTIM, "clerk") == 0
    assert t.begin(VICTIM, "clerk") == 0
    t.succeeded(VICTIM, "clerk")
    for _ in range(3):  # the pair starts again from nothing
        assert fail(t, VICTIM, "clerk") == 0
    assert t.begin(VICTIM, "clerk") > 0
    # The address's own budget kept its 2 + 3 failures, not the success: one more, then no.
    assert fail(t, VICTIM, "other") == 0
    assert t.begin(VICTIM, "another") > 0


def test_an_abandoned_attempt_is_given_back() -> None:
    t = throttle(per_login_ip="1 per 15 minutes")
    assert t.begin(VICTIM, "clerk") == 0
    t.abandoned(VICTIM, "clerk")  # e.g. the database was down: no answer was given
    assert t.begin(VICTIM, "clerk") == 0
    assert t.begin(VICTIM, "clerk") > 0


def test_a_refusal_takes_nothing() -> None:
    """A request refused by one budget leaves the others as they were."""
    t = throttle(per_login_ip="1 per 15 minutes", per_ip="3 per 15 minutes")
    assert fail(t, ATTACKER, "clerk") == 0
    for _ in range(5):
        assert t.begin(ATTACKER, "clerk") > 0  # refused by the pair's budget...
    assert fail(t, ATTACKER, "a") == 0  # ...and not charged to the address's
    assert fail(t, ATTACKER, "b") == 0
    assert t.begin(ATTACKER, "c") > 0


def test_ipv6_addresses_count_by_their_64() -> None:
    t = throttle(per_login_ip="2 per 15 minutes")
    assert fail(t, "2001:db8:1:2::1", "clerk") == 0
    assert fail(t, "2001:db8:1:2:ffff::9", "clerk") == 0
    assert t.begin("2001:db8:1:2::abcd", "clerk") > 0  # the same /64
    assert t.begin("2001:db8:1:3::1", "clerk") == 0  # another one


@pytest.mark.skipif(not redis_up(), reason=f"Redis not reachable at {REDIS_URL}")
def test_redis_counts_are_shared_by_workers() -> None:
    prefix = f"test-login-{uuid.uuid4().hex}:"
    worker_a = throttle(REDIS_URL, prefix, per_login_ip="2 per 15 minutes")
    worker_b = throttle(REDIS_URL, prefix, per_login_ip="2 per 15 minutes")
    try:
        assert fail(worker_a, ATTACKER, "clerk") == 0
        assert fail(worker_b, ATTACKER, "clerk") == 0
        assert worker_a.begin(ATTACKER, "clerk") > 0
        assert worker_b.begin(ATTACKER, "clerk") > 0
        assert worker_b.begin(VICTIM, "clerk") == 0
        worker_b.succeeded(VICTIM, "clerk")
    finally:
        worker_a.limiter.reset()
