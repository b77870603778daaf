"""The full check, Web eID's way: the server decides what was signed, every failure
has its own reason, and a card is stored only as a keyed hash."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from bridge.jpki import SHA256_DIGEST_INFO_PREFIX
from bridge.vcard.jlis import DemoJLIS, IssuedCard
from tests.fixtures.jlis import (
    TEST_ORIGIN,
    TEST_SECRET,
    JpkiHarness,
    auth_key,
    cert_of,
    make_harness,
    sign_auth,
)
from webapp.jpki import Reason, TrustStore, VerificationError, card_key, signed_data
from webapp.jpki.trust import ROOTS_DIR
from webapp.jpki.verifier import normalize_origin


def refused_auth(
    harness: JpkiHarness, cert: bytes, signature: bytes, nonce: str, **expected: str
) -> Reason:
    with pytest.raises(VerificationError) as info:
        harness.verifier.verify_authentication(cert, signature, nonce, **expected)
    return info.value.reason


def test_authentication_succeeds(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    challenge = jpki.challenge("login", "counter-1")
    card = jpki.verifier.verify_authentication(
        demo_card.auth_cert_der, jpki.sign(demo_card, challenge), challenge.nonce
    )
    assert card.signed
    assert (card.purpose, card.terminal_id) == ("login", "counter-1")
    assert len(card.card_key) == 32 and card.card_key_hex == card.card_key.hex()
    assert card.not_after == cert_of(demo_card.auth_cert_der).not_valid_after_utc
    assert card.anchor.startswith("JPKI for user authentication (DEMO)")
    # Nothing raw: neither the serial nor the certificate is in what we would store.
    serial = cert_of(demo_card.auth_cert_der).serial_number
    assert serial.to_bytes(8, "big") not in card.card_key
    assert str(serial) not in repr(card)
    assert demo_card.auth_cert_der not in repr(card).encode()


def test_what_the_card_signs_is_a_sha256_digest_info(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    challenge = jpki.challenge()
    digest_info = jpki.verifier.digest_info_to_sign(challenge)
    data = signed_data(TEST_ORIGIN, challenge.nonce, "login", "counter-1")
    assert digest_info == SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(data).digest()
    # The card pads the DigestInfo itself (PKCS#1 v1.5 type 1): the same signature as
    # signing the hash as prehashed SHA-256.
    digest = hashlib.sha256(data).digest()
    signature = auth_key(demo_card).sign(
        digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    assert signature == sign_auth(demo_card, data)
    assert jpki.verifier.verify_authentication(
        demo_card.auth_cert_der, signature, challenge.nonce
    ).signed


def test_signature_over_other_data(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    challenge = jpki.challenge()
    signature = sign_auth(demo_card, b"something else entirely")
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, challenge.nonce) is (
        Reason.BAD_SIGNATURE
    )


def test_signature_by_another_key(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    challenge = jpki.challenge()
    stranger = rsa.generate_private_key(65537, 2048)
    signature = stranger.sign(
        jpki.verifier.data_to_sign(challenge), padding.PKCS1v15(), hashes.SHA256()
    )
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, challenge.nonce) is (
        Reason.BAD_SIGNATURE
    )


@pytest.mark.parametrize("signature", [b"", b"\x00" * 255, b"\x01" * 257, "ab" * 128])
def test_signature_of_the_wrong_shape(
    jpki: JpkiHarness, demo_card: IssuedCard, signature: bytes
) -> None:
    challenge = jpki.challenge()
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, challenge.nonce) is (
        Reason.BAD_SIGNATURE
    )


@pytest.mark.parametrize(
    "what",
    ["purpose", "terminal", "origin", "nonce"],
)
def test_client_cannot_change_what_is_verified(
    jpki: JpkiHarness, demo_card: IssuedCard, what: str
) -> None:
    # The challenge was issued for login at counter-1 on our origin; the client has
    # the card sign the same nonce with one field of its choosing changed.
    challenge = jpki.challenge("login", "counter-1")
    fields = {
        "origin": TEST_ORIGIN,
        "nonce": challenge.nonce,
        "purpose": "login",
        "terminal": "counter-1",
    }
    fields[what] = {
        "purpose": "pay",
        "terminal": "counter-2",
        "origin": "https://evil.example",
        "nonce": jpki.challenge().nonce,
    }[what]
    data = signed_data(fields["origin"], fields["nonce"], fields["purpose"], fields["terminal"])
    signature = sign_auth(demo_card, data)
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, challenge.nonce) is (
        Reason.BAD_SIGNATURE
    )


def test_expected_purpose_and_terminal(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    cert = demo_card.auth_cert_der
    login = jpki.challenge("login", "counter-1")
    assert refused_auth(
        jpki, cert, jpki.sign(demo_card, login), login.nonce, expected_purpose="pay"
    ) is (Reason.PURPOSE_MISMATCH)
    link = jpki.challenge("link", "counter-1")
    assert refused_auth(
        jpki, cert, jpki.sign(demo_card, link), link.nonce, expected_terminal="counter-9"
    ) is (Reason.TERMINAL_MISMATCH)
    pay = jpki.challenge("pay", "shop-1")
    card = jpki.verifier.verify_authentication(
        cert,
        jpki.sign(demo_card, pay),
        pay.nonce,
        expected_purpose="pay",
        expected_terminal="shop-1",
    )
    assert card.purpose == "pay"


def test_nonce_is_burnt_by_a_failed_attempt(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    challenge = jpki.challenge()
    good = jpki.sign(demo_card, challenge)
    assert refused_auth(jpki, demo_card.auth_cert_der, good[::-1], challenge.nonce) is (
        Reason.BAD_SIGNATURE
    )
    assert refused_auth(jpki, demo_card.auth_cert_der, good, challenge.nonce) is (
        Reason.NONCE_UNKNOWN_OR_USED
    )


def test_replay_and_expiry(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    challenge = jpki.challenge()
    signature = jpki.sign(demo_card, challenge)
    assert jpki.verifier.verify_authentication(demo_card.auth_cert_der, signature, challenge.nonce)
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, challenge.nonce) is (
        Reason.NONCE_UNKNOWN_OR_USED
    )
    late = jpki.challenge()
    jpki.clock.advance(jpki.verifier.challenges.ttl_s + 1)
    assert refused_auth(jpki, demo_card.auth_cert_der, jpki.sign(demo_card, late), late.nonce) is (
        Reason.NONCE_EXPIRED
    )
    assert refused_auth(jpki, demo_card.auth_cert_der, signature, "never-issued") is (
        Reason.NONCE_UNKNOWN_OR_USED
    )


def test_checks_run_in_order(
    jpki: JpkiHarness, demo_card: IssuedCard, expired_card: IssuedCard, private_jlis: DemoJLIS
) -> None:
    # chain before validity before signature: each case also has a bad signature
    stranger = private_jlis.issue()
    challenge = jpki.challenge()
    assert refused_auth(jpki, stranger.auth_cert_der, b"\x00" * 256, challenge.nonce) is (
        Reason.UNTRUSTED_CHAIN
    )
    challenge = jpki.challenge()
    assert refused_auth(jpki, expired_card.auth_cert_der, b"\x00" * 256, challenge.nonce) is (
        Reason.EXPIRED
    )
    challenge = jpki.challenge()
    assert refused_auth(jpki, b"junk", b"\x00" * 256, challenge.nonce) is (
        Reason.MALFORMED_CERTIFICATE
    )


def test_revocation_is_checked_before_the_signature(own_harness: JpkiHarness) -> None:
    card = own_harness.jlis.issue()
    own_harness.jlis.revoke(card.auth_cert_der)
    own_harness.publish_crl()
    challenge = own_harness.challenge()
    assert refused_auth(own_harness, card.auth_cert_der, b"\x00" * 256, challenge.nonce) is (
        Reason.REVOKED
    )


@pytest.fixture
def own_harness(private_jlis: DemoJLIS, tmp_path: Path) -> JpkiHarness:
    return make_harness(private_jlis, tmp_path)


def test_identify_without_pin(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    card = jpki.verifier.identify(demo_card.auth_cert_der)
    assert not card.signed and card.purpose is None and card.terminal_id is None
    challenge = jpki.challenge()
    signed = jpki.verifier.verify_authentication(
        demo_card.auth_cert_der, jpki.sign(demo_card, challenge), challenge.nonce
    )
    assert signed.card_key == card.card_key


# --- the keyed hash -----------------------------------------------------------------


def test_card_key_is_hmac_of_issuer_and_serial(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    cert = cert_of(demo_card.auth_cert_der)
    serial = cert.serial_number
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    expected = hmac.new(
        TEST_SECRET, cert.issuer.public_bytes() + serial_bytes, hashlib.sha256
    ).digest()
    assert jpki.verifier.identify(demo_card.auth_cert_der).card_key == expected
    assert card_key(TEST_SECRET, cert.issuer.public_bytes(), serial_bytes) == expected


def test_card_key_is_stable_and_differs_per_secret_and_card(
    demo_jlis: DemoJLIS, demo_card: IssuedCard, tmp_path: Path
) -> None:
    for name in ("a1", "a2", "b"):
        (tmp_path / name).mkdir()
    a1 = make_harness(demo_jlis, tmp_path / "a1", secret=b"A" * 32)
    a2 = make_harness(demo_jlis, tmp_path / "a2", secret=b"A" * 32)
    b = make_harness(demo_jlis, tmp_path / "b", secret=b"B" * 32)
    key_a1 = a1.verifier.identify(demo_card.auth_cert_der).card_key
    assert a1.verifier.identify(demo_card.auth_cert_der).card_key == key_a1  # cached
    assert a2.verifier.identify(demo_card.auth_cert_der).card_key == key_a1  # restart
    assert b.verifier.identify(demo_card.auth_cert_der).card_key != key_a1
    other = demo_jlis.issue()
    assert a1.verifier.identify(other.auth_cert_der).card_key != key_a1


def test_secret_must_be_32_bytes(demo_jlis: DemoJLIS, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        make_harness(demo_jlis, tmp_path, secret=b"short")


# --- cache and trust changes --------------------------------------------------------


def test_repeat_checks_hit_the_cache(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    for _ in range(3):
        jpki.verifier.identify(demo_card.auth_cert_der)
    stats = jpki.verifier.cache_stats
    assert stats["misses"] == 1 and stats["hits"] == 2 and stats["size"] == 1


def test_cache_is_bounded(demo_jlis: DemoJLIS, tmp_path: Path, demo_card: IssuedCard) -> None:
    harness = make_harness(demo_jlis, tmp_path)
    harness.verifier._cache.maxsize = 2
    cards = [demo_card, demo_jlis.issue(), demo_jlis.issue()]
    for card in cards:
        harness.verifier.identify(card.auth_cert_der)
    assert harness.verifier.cache_stats["size"] == 2


def test_switching_to_production_trust_drops_cached_demo_cards(
    jpki: JpkiHarness, demo_card: IssuedCard
) -> None:
    assert jpki.verifier.identify(demo_card.auth_cert_der)
    jpki.verifier.replace_trust(TrustStore.from_directory(ROOTS_DIR))
    with pytest.raises(VerificationError) as info:
        jpki.verifier.identify(demo_card.auth_cert_der)
    assert info.value.reason is Reason.UNTRUSTED_CHAIN


def test_a_cached_card_still_expires(jpki: JpkiHarness) -> None:
    now = datetime.fromtimestamp(jpki.clock.now, UTC)
    card = jpki.jlis.issue(not_before=now - timedelta(days=1), not_after=now + timedelta(hours=1))
    assert jpki.verifier.identify(card.auth_cert_der)
    jpki.clock.advance(2 * 3600)
    with pytest.raises(VerificationError) as info:
        jpki.verifier.identify(card.auth_cert_der)
    assert info.value.reason is Reason.EXPIRED
    assert jpki.verifier.cache_stats["size"] == 0


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://Ichimai.Example", "https://ichimai.example"),
        ("https://ichimai.example/", "https://ichimai.example"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_origin_is_normalized(origin: str, normal: str) -> None:
    assert normalize_origin(origin) == normal


@pytest.mark.parametrize(
    "origin",
    ["", "ichimai.example", "ftp://x.example", "https://x.example/path", "https://u@x.example"],
)
def test_bad_origins_are_refused(origin: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(origin)
