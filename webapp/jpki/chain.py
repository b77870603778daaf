"""Chain checks for a card's user-authentication certificate (利用者証明用電子証明書).

Split in two on purpose: `check_certificate` does everything that does not depend on the
clock or the CRL (parse, shape, issuer signature by a trust anchor) and returns a
`CheckedCertificate` that the verifier caches per certificate fingerprint; `check_validity`
is the cheap per-check part (leaf and anchor validity at `now`). RFC 5280 section 6.1 is
the model, reduced to JPKI's single level: leaf directly under a trust anchor.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID

from .der import CertificateParts, DERError, certificate_parts
from .errors import (
    AnchorNotValid,
    CertificateExpired,
    CertificateNotYetValid,
    MalformedCertificate,
    NotEndEntity,
    UntrustedChain,
    WrongKeyType,
)
from .trust import TrustAnchor, TrustStore

# A real user-authentication certificate is 1.3-1.9 KB; anything far larger is refused
# before it is hashed or parsed (bounded input, h11's rule).
MAX_CERT_BYTES = 16 * 1024
MIN_RSA_BITS = 2048


class _Hash(NamedTuple):
    name: str  # hashlib name
    digest_info_prefix: bytes  # DER DigestInfo up to the digest (RFC 8017 9.2, note 1)


def _rsa_pkcs1_ids(last_arc: int) -> tuple[bytes, bytes]:
    """sha*WithRSAEncryption AlgorithmIdentifier DER: NULL parameters, and absent."""
    oid = bytes.fromhex("06092a864886f70d0101") + bytes([last_arc])
    return b"\x30\x0d" + oid + b"\x05\x00", b"\x30\x0b" + oid


# J-LIS signs with sha256WithRSAEncryption; SHA-1 and MD5 signatures are never accepted.
# Matched on the raw AlgorithmIdentifier bytes (NULL parameters as RFC 4055 asks, or
# absent): stricter and cheaper than going through parsed OIDs.
ALLOWED_SIGNATURES: dict[bytes, _Hash] = {
    algorithm_id: hash_
    for last_arc, hash_ in (
        (11, _Hash("sha256", bytes.fromhex("3031300d060960864801650304020105000420"))),
        (12, _Hash("sha384", bytes.fromhex("3041300d060960864801650304020205000430"))),
        (13, _Hash("sha512", bytes.fromhex("3051300d060960864801650304020305000440"))),
    )
    for algorithm_id in _rsa_pkcs1_ids(last_arc)
}
_PKCS1V15 = padding.PKCS1v15()

# A certificate is used minutes after J-LIS issues it (notBefore = issue time); a
# verifier whose clock is slightly behind must not refuse a brand-new card. notAfter
# gets no such grace.
NOT_BEFORE_GRACE_S = 300.0

# Extensions we understand; any other extension marked critical makes the certificate
# unusable (RFC 5280 4.2). certificatePolicies is critical on JPKI certificates.
HANDLED_EXTENSIONS = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)


class CheckedCertificate(NamedTuple):
    """A certificate whose shape and issuer signature were checked (clock-free part).

    A NamedTuple (immutable, cheap to build): one is made per new certificate seen.
    """

    anchors: tuple[TrustAnchor, ...]  # every anchor whose key verifies it (same DN+key)
    public_key: rsa.RSAPublicKey
    issuer_der: bytes  # raw issuer Name TLV, as signed
    serial_bytes: bytes  # raw serial INTEGER content
    serial: int
    not_before: float  # POSIX seconds
    not_after: float
    not_after_utc: datetime
    crl_urls: tuple[str, ...]  # URIs of the CRL distribution points
    # [valid_from, valid_until]: inside it both the leaf (with notBefore grace) and the
    # first anchor are valid, so a check needs two comparisons; outside, check_validity
    # looks closer and names the reason.
    valid_from: float
    valid_until: float

    @property
    def anchor(self) -> TrustAnchor:
        """The anchor whose key checks this certificate's CRL."""
        return self.anchors[0]


def _extensions(cert: x509.Certificate) -> dict[x509.ObjectIdentifier, x509.Extension[Any]]:
    """Every extension by OID, in one pass (each lookup by class would rescan the list)."""
    try:
        return {ext.oid: ext for ext in cert.extensions}
    except ValueError as exc:  # an extension cryptography could not parse
        raise MalformedCertificate(str(exc)) from exc


def _crl_urls(dps: x509.CRLDistributionPoints | None) -> tuple[str, ...]:
    if dps is None:
        return ()
    urls = [
        name.value
        for dp in dps
        for name in dp.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]
    return tuple(urls)


def parse_certificate(der: bytes) -> x509.Certificate:
    """Parse DER into a certificate, refusing oversized or malformed input."""
    if type(der) is not bytes or not 0 < len(der) <= MAX_CERT_BYTES:
        raise MalformedCertificate("missing or oversized certificate")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedCertificate(str(exc)) from exc


def check_certificate(der: bytes, store: TrustStore) -> CheckedCertificate:
    """Parse, check shape and verify the issuer signature against the trust anchors."""
    cert = parse_certificate(der)
    try:
        parts = certificate_parts(der)
    except DERError as exc:
        raise MalformedCertificate(str(exc)) from exc
    if not parts.v3:
        raise MalformedCertificate("not an X.509 v3 certificate")
    signature_hash = ALLOWED_SIGNATURES.get(parts.outer_algorithm)
    if signature_hash is None:
        raise UntrustedChain(f"refused signature algorithm {cert.signature_algorithm_oid}")
    if parts.inner_algorithm != parts.outer_algorithm:  # RFC 5280 4.1.1.2
        raise MalformedCertificate("signature algorithm inside and outside the TBS differ")
    try:
        public_key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedCertificate(f"unreadable public key: {exc}") from exc
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        raise WrongKeyType(f"need RSA >= {MIN_RSA_BITS} bits, got {type(public_key).__name__}")
    extensions = _extensions(cert)
    _check_end_entity(extensions)
    aki = extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    key_id = aki.value.key_identifier if aki else None
    anchors = _verify_issuer(cert, parts, store, key_id, signature_hash)
    dps = extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    not_before, not_after = start.timestamp(), end.timestamp()
    return CheckedCertificate(
        anchors=anchors,
        public_key=public_key,
        issuer_der=parts.issuer_der,
        serial_bytes=parts.serial_bytes,
        serial=cert.serial_number,
        not_before=not_before,
        not_after=not_after,
        not_after_utc=end,
        crl_urls=_crl_urls(dps.value if dps else None),
        valid_from=max(not_before - NOT_BEFORE_GRACE_S, anchors[0].not_before),
        valid_until=min(not_after, anchors[0].not_after),
    )


def _check_end_entity(extensions: dict[x509.ObjectIdentifier, x509.Extension[Any]]) -> None:
    """A card certificate: no CA, digitalSignature allowed, no unknown critical extension."""
    for oid, ext in extensions.items():
        if ext.critical and oid not in HANDLED_EXTENSIONS:
            raise UntrustedChain(f"unknown critical extension {oid.dotted_string}")
    bc = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.value.ca:
        raise NotEndEntity("a CA certificate is not a card's certificate")
    ku = extensions.get(ExtensionOID.KEY_USAGE)
    if ku is not None and not ku.value.digital_signature:
        raise NotEndEntity("key usage lacks digitalSignature")


def _verify_issuer(
    cert: x509.Certificate,
    parts: CertificateParts,
    store: TrustStore,
    key_id: bytes | None,
    signature_hash: _Hash,
) -> tuple[TrustAnchor, ...]:
    """The anchors whose key signed `cert` (several when a root was re-issued, same key).

    Anchors whose raw subject equals the raw issuer (else whose Name equals it), the
    signature checked over the raw TBS bytes with the anchor's RSA key: no Name parsing
    or re-encoding on the usual path.
    """
    candidates = store.candidates(parts.issuer_der, key_id)
    if not candidates:
        # Same Name in another encoding (e.g. UTF8String for PrintableString): RFC 5280
        # 7.1 matches Names, not bytes. Rare, and slower (parses the issuer Name).
        candidates = store.candidates_by_name(cert.issuer, key_id)
    good: list[TrustAnchor] = []
    expected = b""
    for anchor in candidates:
        anchor_key = anchor.public_key
        try:
            if isinstance(anchor_key, rsa.RSAPublicKey):
                # RFC 8017 8.2.2 encode-and-compare, like the card signature check.
                expected = (
                    expected
                    or signature_hash.digest_info_prefix
                    + hashlib.new(signature_hash.name, parts.tbs).digest()
                )
                recovered = anchor_key.recover_data_from_signature(parts.signature, _PKCS1V15, None)
                if not hmac.compare_digest(recovered, expected):
                    continue
            else:  # a future EC root: let cryptography pick the algorithm
                cert.verify_directly_issued_by(anchor.certificate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        good.append(anchor)
    if not good:
        raise UntrustedChain("no configured trust anchor issued this certificate")
    return tuple(good)


def check_validity(checked: CheckedCertificate, now: float) -> None:
    """Leaf validity at `now` (notBefore - grace <= now <= notAfter), and an anchor's."""
    if now < checked.not_before - NOT_BEFORE_GRACE_S:
        raise CertificateNotYetValid("notBefore is in the future")
    if now > checked.not_after:
        raise CertificateExpired("notAfter has passed")
    for anchor in checked.anchors:
        if anchor.not_before <= now <= anchor.not_after:
            return
    raise AnchorNotValid(f"trust anchor outside its validity: {checked.anchor.label}")
