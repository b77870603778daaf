"""JPKI trust anchors: the J-LIS user-authentication roots, and the demo CA in demo mode.

JPKI's user-authentication hierarchy is one level deep: the self-signed root "JPKI for
user authentication" issues every card's 利用者証明用電子証明書 directly (the card's EF
000B holds that root). J-LIS rolls its root over now and then (2015, 2023) with the same
DN, so anchors are matched by issuer name and then by key (AKI/SKI, then a signature
check against each candidate).

The production trust store is webapp/data/jpki-roots/ (the real public roots). A demo
CA is only ever added when demo mode is on, and a demo-looking certificate found among
the production roots is a configuration error, not a silent extra anchor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from .der import certificate_parts

ROOTS_DIR = Path(__file__).resolve().parent.parent / "data" / "jpki-roots"
CERT_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
DEMO_MARKERS = ("(demo)", "not for production")


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """One trusted CA certificate and what chain checks need from it, parsed once."""

    certificate: x509.Certificate
    der: bytes
    fingerprint: str  # SHA-256 of the DER, hex
    subject: x509.Name
    subject_der: bytes  # raw subject Name TLV, compared with a leaf's raw issuer
    key_id: bytes | None  # subjectKeyIdentifier
    public_key: CertificatePublicKeyTypes
    not_before: float  # POSIX seconds
    not_after: float
    label: str
    demo: bool

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, *, demo: bool = False) -> TrustAnchor:
        """Wrap a CA certificate; raises ValueError unless it may issue certificates."""
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise ValueError(f"not a CA certificate: {cert.subject.rfc4514_string()}")
        try:
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.key_cert_sign:
                raise ValueError("trust anchor without keyCertSign")
        except x509.ExtensionNotFound:
            pass
        try:
            ski: bytes | None = cert.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value.digest
        except x509.ExtensionNotFound:
            ski = None
        der = cert.public_bytes(serialization.Encoding.DER)
        fingerprint = hashlib.sha256(der).hexdigest()
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        label = f"{_unit(cert)} {start.year} ({fingerprint[:16]})"
        return cls(
            certificate=cert,
            der=der,
            fingerprint=fingerprint,
            subject=cert.subject,
            subject_der=certificate_parts(der).subject_der,
            key_id=ski,
            public_key=cert.public_key(),
            not_before=start.timestamp(),
            not_after=end.timestamp(),
            label=label,
            demo=demo,
        )

    @classmethod
    def from_der(cls, der: bytes, *, demo: bool = False) -> TrustAnchor:
        """Parse a DER CA certificate into an anchor."""
        return cls.from_certificate(x509.load_der_x509_certificate(der), demo=demo)


def _unit(cert: x509.Certificate) -> str:
    units = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
    return str(units[0].value) if units else cert.subject.rfc4514_string()


def looks_like_demo(cert: x509.Certificate) -> bool:
    """True for a certificate whose DN says it is a demo (our fake J-LIS marks them)."""
    text = cert.subject.rfc4514_string().lower()
    return any(marker in text for marker in DEMO_MARKERS)


def load_certificates(directory: Path) -> list[x509.Certificate]:
    """Every certificate in `directory` (*.pem/*.crt/*.cer/*.der, PEM or DER), by name."""
    certs: list[x509.Certificate] = []
    for path in sorted(Path(directory).iterdir()):
        if path.suffix.lower() not in CERT_SUFFIXES or not path.is_file():
            continue
        data = path.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs.extend(x509.load_pem_x509_certificates(data))
        else:
            certs.append(x509.load_der_x509_certificate(data))
    return certs


class TrustStore:
    """The anchors a card's certificate may chain to; demo anchors only in demo mode."""

    def __init__(
        self,
        anchors: Iterable[TrustAnchor],
        *,
        demo_anchors: Iterable[TrustAnchor] = (),
        demo_mode: bool = False,
    ) -> None:
        production = list(anchors)
        for anchor in production:
            if anchor.demo or looks_like_demo(anchor.certificate):
                raise ValueError(f"demo CA among the production anchors: {anchor.label}")
        chosen = production
        if demo_mode:
            chosen += [a if a.demo else _as_demo(a) for a in demo_anchors]
        self.demo_mode = demo_mode
        self.anchors: tuple[TrustAnchor, ...] = tuple(chosen)
        self._by_name: dict[x509.Name, list[TrustAnchor]] = {}
        self._by_der: dict[bytes, list[TrustAnchor]] = {}
        for anchor in self.anchors:
            self._by_name.setdefault(anchor.subject, []).append(anchor)
            self._by_der.setdefault(anchor.subject_der, []).append(anchor)

    @classmethod
    def from_directory(
        cls,
        roots_dir: Path = ROOTS_DIR,
        *,
        demo_mode: bool = False,
        demo_ca: Iterable[bytes | x509.Certificate] = (),
    ) -> TrustStore:
        """Production anchors from `roots_dir`, plus `demo_ca` certificates in demo mode."""
        anchors = [TrustAnchor.from_certificate(c) for c in load_certificates(roots_dir)]
        demo = [
            TrustAnchor.from_der(c, demo=True)
            if isinstance(c, bytes)
            else TrustAnchor.from_certificate(c, demo=True)
            for c in demo_ca
        ]
        return cls(anchors, demo_anchors=demo, demo_mode=demo_mode)

    @classmethod
    def production(cls) -> TrustStore:
        """The real J-LIS user-authentication roots shipped in webapp/data/jpki-roots/."""
        return cls.from_directory(ROOTS_DIR)

    def candidates(self, issuer_der: bytes, authority_key_id: bytes | None) -> list[TrustAnchor]:
        """Anchors whose subject is byte-for-byte `issuer_der`, a matching SKI first."""
        return _key_id_first(self._by_der.get(issuer_der, []), authority_key_id)

    def candidates_by_name(
        self, issuer: x509.Name, authority_key_id: bytes | None
    ) -> list[TrustAnchor]:
        """Anchors whose subject equals `issuer` as a Name (encodings may differ)."""
        return _key_id_first(self._by_name.get(issuer, []), authority_key_id)

    @property
    def fingerprints(self) -> frozenset[str]:
        """SHA-256 fingerprints of every anchor in use."""
        return frozenset(a.fingerprint for a in self.anchors)


def _key_id_first(found: list[TrustAnchor], key_id: bytes | None) -> list[TrustAnchor]:
    if key_id is None or len(found) < 2:
        return list(found)
    return sorted(found, key=lambda a: a.key_id != key_id)


def _as_demo(anchor: TrustAnchor) -> TrustAnchor:
    return TrustAnchor.from_certificate(anchor.certificate, demo=True)
