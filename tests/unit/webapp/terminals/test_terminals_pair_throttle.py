"""Pairing is throttled: wrong codes per client address and overall, each attempt taken
before its code is looked up, shared through Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import limits.storage.memory
import limits.storage.redis
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from bridge import seal
from bridge.pairing import auth_public_b64u
from tests.fixtures.jlis import FakeClock
from tests.support.services import REDIS_URL, redis_up
from webapp import db
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.api_views import pairing_throttle
from webapp.terminals.testing import ADMIN_TOKEN, build_app
from webapp.terminals.throttle import PairingThrottle
from webapp.throttle import AttemptLimiter

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = "ABCD-EFGH-JKMN"  # the shape of a code, issued to nobody


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for the throttle and for `limits`, which reads time.time()."""
    fake = FakeClock(1_800_000_000.0)
    for module in (limits.storage.memory, limits.storage.redis):
        monkeypatch.setattr(module, "time", SimpleNamespace(time=fake))
    return fake


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    app = build_app(f"sqlite:///{tmp_path / 't.db'}")
    app.extensions["bridge_pair_throttle"] = PairingThrottle(
        AttemptLimiter(clock=clock), per_ip="3 per 10 minutes", overall="5 per 10 minutes"
    )
    yield app
    app.extensions["bus"].close()


@pytest.fixture
def terminal_id(app: Any) -> int:
    with app.app_context(), db.new_session() as s:
        provider = Provider(code="JP-1000001", kind="library", name_ja="図書館")
        s.add(provider)
        s.commit()
        return services.create_terminal(s, provider.id, "counter", "Counter 1").id


def body(code: str) -> dict[str, str]:
    auth = ed25519.Ed25519PrivateKey.generate()
    device = seal.generate_device_key()
    return {
        "code": code,
        "auth_public_key": auth_public_b64u(auth),
        "seal_public_key": seal.public_key_b64u(device.public_key()),
    }


def new_code(client: Any, terminal_id: int) -> str:
    issued = client.post(f"/api/v1/admin/terminals/{terminal_id}/pairing-codes", headers=AUTH)
    code: str = issued.get_json()["code"]
    return code


def attempt(client: Any, code: str, ip: str = "198.51.100.7", **kw: Any) -> Any:
    return client.post(
        "/api/v1/bridges/pair", json=body(code), environ_base={"REMOTE_ADDR": ip}, **kw
    )


def test_under_the_limit_a_good_code_pairs(app: Any, terminal_id: int) -> None:
    client = app.test_client()
    for _ in range(2):
        assert attempt(client, WRONG).status_code == 403
    assert attempt(client, new_code(client, terminal_id)).status_code == 201


def test_over_the_limit_even_a_good_code_is_refused(
    app: Any, terminal_id: int, clock: FakeClock
) -> None:
    client = app.test_client()
    for _ in range(3):
        assert attempt(client, WRONG).status_code == 403
    clock.advance(60)
    refused = attempt(client, new_code(client, terminal_id))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "540"  # the first failure leaves the window
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_attempts" and error["retry_after"] == 540
    assert "ペアリング" in error["message"]  # Japanese by default
    english = attempt(client, WRONG, headers={"Accept-Language": "en"})
    assert english.status_code == 429
    assert english.get_json()["error"]["message"] == (
        "Too many failed pairing attempts. Please wait and try again."
    )
    assert attempt(client, WRONG, ip="203.0.113.9").status_code == 403  # another client


def test_when_the_window_has_passed_pairing_is_allowed_again(
    app: Any, terminal_id: int, clock: FakeClock
) -> None:
    client = app.test_client()
    for _ in range(3):
        attempt(client, WRONG)
        clock.advance(1)
    code = new_code(client, terminal_id)
    assert attempt(client, code).status_code == 429
    clock.advance(600 - 2)
    assert attempt(client, code).status_code == 201  # the oldest failure left the window


def test_a_successful_pairing_is_not_a_failure(app: Any, terminal_id: int) -> None:
    client = app.test_client()
    for _ in range(5):
        assert attempt(client, new_code(client, terminal_id)).status_code == 201
    assert attempt(client, WRONG).status_code == 403  # the budget is untouched
    assert pairing_throttle(app).retry_after("198.51.100.7") == 0


def test_a_malformed_request_is_not_a_guess(app: Any) -> None:
    client = app.test_client()
    for _ in range(5):
        answer = client.post("/api/v1/bridges/pair", json={"code": 5})
        assert answer.status_code == 400
    assert pairing_throttle(app).retry_after("127.0.0.1") == 0


def test_the_global_ceiling_stops_many_addresses(app: Any, terminal_id: int) -> None:
    client = app.test_client()
    for i in range(5):
        assert attempt(client, WRONG, ip=f"2001:db8:{i}::1").status_code == 403  # 5 networks
    refused = attempt(client, new_code(client, terminal_id), ip="2001:db8:99::1")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_the_app_builds_its_throttle_from_settings(tmp_path: Path) -> None:
    app = build_app(
        f"sqlite:///{tmp_path / 't.db'}",
        extra={"PAIR_LIMIT_PER_IP": "2 per 5 minutes", "PAIR_LIMIT_OVERALL": "9 per hour"},
    )
    try:
        throttle = pairing_throttle(app)
        assert throttle is pairing_throttle(app)
        assert (throttle.per_ip.amount, throttle.overall.amount) == (2, 9)
        defaults = pairing_throttle(build_app(f"sqlite:///{tmp_path / 'd.db'}"))
        assert (defaults.per_ip.amount, defaults.overall.amount) == (10, 5000)
    finally:
        app.extensions["bus"].close()


@pytest.mark.skipif(not redis_up(), reason=f"Redis not reachable at {REDIS_URL}")
def test_redis_counts_are_shared_by_workers(clock: FakeClock) -> None:
    prefix = f"test-pair-{uuid.uuid4().hex}:"
    worker_a, worker_b = (
        PairingThrottle(
            AttemptLimiter(REDIS_URL, prefix=prefix, clock=clock), per_ip="2 per 10 minutes"
        )
        for _ in range(2)
    )
    try:
        assert worker_a.begin("198.51.100.7") == 0
        assert worker_b.begin("198.51.100.7") == 0
        assert worker_a.begin("198.51.100.7") == 600
        assert worker_b.retry_after("198.51.100.7") == 600
        assert worker_b.retry_after("198.51.100.8") == 0
        clock.advance(601)
        assert worker_a.retry_after("198.51.100.7") == 0
    finally:
        worker_a.limiter.reset()  # drops every key under this test's prefix
