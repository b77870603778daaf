"""Chain and validity: each refusal with its own reason."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from bridge.vcard.jlis import DemoJLIS, IssuedCard
from tests.fixtures.jlis import JpkiHarness, ca_key, cert_of, make_harness
from webapp.jpki import FileCrlSource, Reason, RevocationChecker, TrustAnchor, VerificationError
from webapp.jpki.chain import check_certificate
from webapp.jpki.der import certificate_parts, serial_to_bytes

NOW = datetime.now(UTC).replace(microsecond=0)
_RSA = rsa.generate_private_key(65537, 2048)


def forge(
    jlis: DemoJLIS,
    *,
    public_key: Any = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    key_usage: x509.KeyUsage | None = None,
    ca: bool | None = None,
    extra: x509.ExtensionType | None = None,
    critical_extra: bool = True,
    issuer: x509.Name | None = None,
) -> bytes:
    """A certificate signed by the demo auth CA's key, with chosen oddities."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8))]))
        .issuer_name(issuer or jlis.auth_ca_cert.subject)
        .public_key(public_key or _RSA.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca, None), critical=True)
    if extra is not None:
        builder = builder.add_extension(extra, critical=critical_extra)
    cert = builder.sign(ca_key(jlis), hash_algorithm or hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def _ku(digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature, not digital_signature, *[False] * 7)


def refused(harness: JpkiHarness, der: bytes) -> Reason:
    """The reason `identify` refuses `der` (fails the test if it is accepted)."""
    with pytest.raises(VerificationError) as info:
        harness.verifier.identify(der)
    return info.value.reason


def test_a_good_card_passes_the_chain(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    checked = check_certificate(demo_card.auth_cert_der, jpki.verifier.trust)
    assert checked.anchor.demo
    assert checked.serial == cert_of(demo_card.auth_cert_der).serial_number
    assert checked.serial_bytes == serial_to_bytes(checked.serial)
    assert checked.crl_urls == (jpki.jlis.crl_url("auth"),)
    assert checked.public_key.key_size == 2048


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x03\x02\x01\x01",
        b"not a certificate",
        b"\x30\x82" + b"\xff" * 20,
        b"\x30" + b"\x00" * (17 * 1024),
    ],
    ids=["empty", "tiny-sequence", "text", "bad-length", "oversized"],
)
def test_malformed_certificates(jpki: JpkiHarness, der: bytes) -> None:
    assert refused(jpki, der) is Reason.MALFORMED_CERTIFICATE


def test_truncated_and_padded_certificates(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    der = demo_card.auth_cert_der
    assert refused(jpki, der[:-10]) is Reason.MALFORMED_CERTIFICATE
    assert refused(jpki, der + b"\x00\x00") is Reason.MALFORMED_CERTIFICATE


def test_not_bytes_is_malformed(jpki: JpkiHarness) -> None:
    assert refused(jpki, "30820100" * 10) is Reason.MALFORMED_CERTIFICATE  # type: ignore[arg-type]


def test_expired_card(jpki: JpkiHarness, expired_card: IssuedCard) -> None:
    assert refused(jpki, expired_card.auth_cert_der) is Reason.EXPIRED


def test_not_yet_valid_card(jpki: JpkiHarness, issue_card: Any) -> None:
    card = issue_card(not_before=NOW + timedelta(days=2))
    assert refused(jpki, card.auth_cert_der) is Reason.NOT_YET_VALID


def test_validity_follows_the_clock(jpki: JpkiHarness, issue_card: Any) -> None:
    card = issue_card(not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=1))
    assert jpki.verifier.identify(card.auth_cert_der).not_after == NOW + timedelta(days=1)
    jpki.clock.advance(2 * 86400)
    jpki.publish_crl()
    assert refused(jpki, card.auth_cert_der) is Reason.EXPIRED
    jpki.clock.advance(-10 * 86400)
    assert refused(jpki, card.auth_cert_der) is Reason.NOT_YET_VALID


def test_anchor_outside_its_validity(jpki: JpkiHarness, issue_card: Any) -> None:
    anchor_end = jpki.jlis.auth_ca_cert.not_valid_after_utc
    card = issue_card(not_after=anchor_end + timedelta(days=30))
    jpki.clock.set(anchor_end + timedelta(days=1))
    jpki.publish_crl(next_update=anchor_end + timedelta(days=2))
    assert refused(jpki, card.auth_cert_der) is Reason.ANCHOR_NOT_VALID


def test_card_from_another_ca_with_the_same_dn(jpki: JpkiHarness, private_jlis: DemoJLIS) -> None:
    assert private_jlis.auth_ca_cert.subject == jpki.jlis.auth_ca_cert.subject
    stranger = private_jlis.issue()
    assert refused(jpki, stranger.auth_cert_der) is Reason.UNTRUSTED_CHAIN


def test_two_anchors_with_one_dn_each_verify_their_own_cards(
    demo_jlis: DemoJLIS, private_jlis: DemoJLIS, demo_card: IssuedCard, tmp_path: Path
) -> None:
    # Like J-LIS's 2015 and 2023 roots: same DN, different keys, a CRL each.
    harness = make_harness(demo_jlis, tmp_path, extra_demo_ca=(private_jlis.auth_ca_der,))
    fingerprint = TrustAnchor.from_der(private_jlis.auth_ca_der).fingerprint
    harness.verifier.replace_revocation(
        RevocationChecker(
            default_source=FileCrlSource(harness.crl_path),
            sources_by_anchor={fingerprint: FileCrlSource(private_jlis.directory / "auth.crl")},
            clock=harness.clock,
        )
    )
    other = private_jlis.issue()
    mine = harness.verifier.identify(demo_card.auth_cert_der)
    theirs = harness.verifier.identify(other.auth_cert_der)
    assert mine.anchor != theirs.anchor
    checked = check_certificate(other.auth_cert_der, harness.verifier.trust)
    assert checked.anchor.certificate.public_key() == private_jlis.auth_ca_cert.public_key()
    private_jlis.revoke(other.auth_cert_der)
    harness.verifier.revocation.refresh_all()
    assert refused(harness, other.auth_cert_der) is Reason.REVOKED
    assert harness.verifier.identify(demo_card.auth_cert_der) == mine


def test_rsa_1024_and_ec_keys_are_the_wrong_key_type(jpki: JpkiHarness) -> None:
    small = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505 - the point
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    for key in (small, p384):
        assert refused(jpki, forge(jpki.jlis, public_key=key)) is Reason.WRONG_KEY_TYPE


def test_sha1_signed_certificate_is_untrusted(jpki: JpkiHarness) -> None:
    # cryptography no longer signs certificates with SHA-1, so re-sign one by hand: the
    # sha256WithRSA AlgorithmIdentifiers become sha1WithRSA (same length), then a fresh
    # PKCS#1 v1.5 SHA-1 signature over the TBS replaces the last 256 bytes.
    sha256_rsa = bytes.fromhex("300d06092a864886f70d01010b0500")
    sha1_rsa = bytes.fromhex("300d06092a864886f70d0101050500")
    der = forge(jpki.jlis).replace(sha256_rsa, sha1_rsa)
    tbs = certificate_parts(der).tbs
    signature = ca_key(jpki.jlis).sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    der = der[:-256] + signature
    assert cert_of(der).signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.5"
    assert refused(jpki, der) is Reason.UNTRUSTED_CHAIN


def test_ca_certificate_presented_as_a_card(jpki: JpkiHarness) -> None:
    # The anchor itself "chains" to itself; it must still never pass as a card.
    assert refused(jpki, jpki.jlis.auth_ca_der) is Reason.NOT_END_ENTITY
    assert refused(jpki, forge(jpki.jlis, ca=True)) is Reason.NOT_END_ENTITY


def test_key_usage_without_digital_signature(jpki: JpkiHarness) -> None:
    der = forge(jpki.jlis, key_usage=_ku(False))
    assert refused(jpki, der) is Reason.NOT_END_ENTITY
    assert jpki.verifier.identify(forge(jpki.jlis, key_usage=_ku(True))).signed is False


def test_unknown_critical_extension(jpki: JpkiHarness) -> None:
    odd = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    assert refused(jpki, forge(jpki.jlis, extra=odd)) is Reason.UNTRUSTED_CHAIN
    tolerated = forge(jpki.jlis, extra=odd, critical_extra=False)
    assert jpki.verifier.identify(tolerated).signed is False


def test_forged_signature_is_untrusted(jpki: JpkiHarness, demo_card: IssuedCard) -> None:
    der = bytearray(demo_card.auth_cert_der)
    der[-5] ^= 0x01  # inside the issuer's signature
    assert refused(jpki, bytes(der)) is Reason.UNTRUSTED_CHAIN


def test_issuer_name_matching_survives_reencoding(jpki: JpkiHarness) -> None:
    # Same DN, but the C attribute as UTF8String instead of PrintableString: raw bytes
    # differ, the Names are equal, so the slower by-Name path must find the anchor.
    subject = jpki.jlis.auth_ca_cert.subject
    attributes = [
        x509.NameAttribute(a.oid, str(a.value), _type=_ASN1Type.UTF8String) for a in subject
    ]
    reencoded = x509.Name(attributes)
    der = forge(jpki.jlis, issuer=reencoded)
    parts = certificate_parts(der)
    assert parts.issuer_der != jpki.verifier.trust.anchors[-1].subject_der
    assert jpki.verifier.identify(der).signed is False
