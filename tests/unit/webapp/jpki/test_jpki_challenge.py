"""Nonces: 256 random bits, short life, single use; and the canonical signed data."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from tests.fixtures.jlis import FakeClock
from webapp.jpki import (
    ChallengeRecord,
    ChallengeService,
    InMemoryNonceStore,
    NonceStoreFull,
    Reason,
    VerificationError,
    signed_data,
)
from webapp.jpki.challenge import SIGNED_DATA_TAG, signed_data_after, signed_data_prefix


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def service(clock: FakeClock) -> ChallengeService:
    return ChallengeService(InMemoryNonceStore(clock=clock), ttl_s=120, clock=clock)


def reason_of(service: ChallengeService, nonce: Any) -> Reason:
    with pytest.raises(VerificationError) as info:
        service.take(nonce)
    return info.value.reason


def test_nonce_is_256_random_bits_base64url(service: ChallengeService) -> None:
    nonces = {service.issue("login", "t").nonce for _ in range(200)}
    assert len(nonces) == 200
    for nonce in nonces:
        assert len(nonce) == 43 and "=" not in nonce
        assert len(base64.urlsafe_b64decode(nonce + "=")) == 32


def test_challenge_carries_its_binding(service: ChallengeService, clock: FakeClock) -> None:
    challenge = service.issue("link", "kiosk-7")
    assert (challenge.purpose, challenge.terminal_id) == ("link", "kiosk-7")
    assert challenge.expires_at.timestamp() == clock.now + 120
    record = service.take(challenge.nonce)
    assert record == ChallengeRecord("link", "kiosk-7", clock.now, clock.now + 120)


def test_single_use(service: ChallengeService) -> None:
    nonce = service.issue("login", "t").nonce
    service.take(nonce)
    assert reason_of(service, nonce) is Reason.NONCE_UNKNOWN_OR_USED


def test_expired_nonce(service: ChallengeService, clock: FakeClock) -> None:
    nonce = service.issue("login", "t").nonce
    clock.advance(121)
    assert reason_of(service, nonce) is Reason.NONCE_EXPIRED
    assert reason_of(service, nonce) is Reason.NONCE_UNKNOWN_OR_USED  # burnt anyway


def test_long_expired_nonce_is_simply_unknown(service: ChallengeService, clock: FakeClock) -> None:
    nonce = service.issue("login", "t").nonce
    clock.advance(120 + 600 + 1)  # past the store's grace: dropped
    assert reason_of(service, nonce) is Reason.NONCE_UNKNOWN_OR_USED


@pytest.mark.parametrize(
    "nonce",
    ["", "A" * 129, "abc def", "abc=", "ÄÖÜ", None, 12345, b"bytes"],
    ids=["empty", "too-long", "space", "padding", "non-ascii", "none", "int", "bytes"],
)
def test_garbage_nonces_never_reach_the_store(service: ChallengeService, nonce: Any) -> None:
    assert reason_of(service, nonce) is Reason.NONCE_UNKNOWN_OR_USED


def test_unknown_nonce(service: ChallengeService) -> None:
    assert reason_of(service, "A" * 43) is Reason.NONCE_UNKNOWN_OR_USED


@pytest.mark.parametrize("purpose", ["", "Login", "log in", "x" * 33, "ログイン"])
def test_purpose_is_a_short_token(service: ChallengeService, purpose: str) -> None:
    with pytest.raises(ValueError):
        service.issue(purpose, "t")


def test_terminal_id_is_bounded(service: ChallengeService) -> None:
    with pytest.raises(ValueError):
        service.issue("login", "t" * 129)
    with pytest.raises(ValueError):
        service.issue("login", "line\nbreak")
    assert service.issue("login", "").terminal_id == ""  # a home browser: no terminal


def test_store_is_bounded_and_purges_expired(clock: FakeClock) -> None:
    store = InMemoryNonceStore(max_entries=3, clock=clock)
    service = ChallengeService(store, ttl_s=10, expired_grace_s=0, clock=clock)
    for _ in range(3):
        service.issue("login", "t")
    with pytest.raises(NonceStoreFull):
        service.issue("login", "t")
    clock.advance(11)
    service.issue("login", "t")  # the three expired ones were purged
    assert len(store) == 1


def test_take_is_atomic_under_threads(service: ChallengeService) -> None:
    nonce = service.issue("login", "t").nonce
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def racer(i: int) -> None:
        barrier.wait()
        try:
            service.take(nonce)
            wins.append(i)
        except VerificationError:
            pass

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_record_round_trips_through_a_dict() -> None:
    record = ChallengeRecord("pay", "shop-3", 1.5, 121.5)
    assert ChallengeRecord.from_dict(record.to_dict()) == record


# --- signed data --------------------------------------------------------------------


def test_signed_data_known_answer() -> None:
    data = signed_data("https://a.example", "N0nce", "login", "t1")
    expected = (
        b"\x00\x00\x00\x14ichimai/jpki-auth/v1"
        b"\x00\x00\x00\x11https://a.example"
        b"\x00\x00\x00\x05N0nce"
        b"\x00\x00\x00\x05login"
        b"\x00\x00\x00\x02t1"
    )
    assert SIGNED_DATA_TAG == b"ichimai/jpki-auth/v1"
    assert data == expected


def test_signed_data_is_unambiguous() -> None:
    # Moving bytes between neighbouring fields must change the encoding.
    variants = [
        ("https://a.example", "nonce", "login", "t1"),
        ("https://a.example", "nonc", "elogin", "t1"),
        ("https://a.example", "nonce", "logint", "1"),
        ("https://a.examplen", "once", "login", "t1"),
        ("https://a.example", "nonce", "login", "t1\x00"),
    ]
    assert len({signed_data(*v) for v in variants}) == len(variants)


def test_signed_data_utf8_lengths_count_bytes() -> None:
    data = signed_data("https://a.example", "n", "login", "図書館")
    assert data.endswith(b"\x00\x00\x00\x09" + "図書館".encode())


def test_prefix_form_is_the_same_bytes() -> None:
    prefix = signed_data_prefix("https://a.example")
    assert signed_data_after(prefix, "n", "pay", "t") == signed_data(
        "https://a.example", "n", "pay", "t"
    )
