"""Load a JPKI CRL (RFC 5280 section 5) into a set of revoked serials, once per CRL.

The user-authentication CRL of a real CA is large (every lost, renewed or surrendered
card of the country), so the expensive parts run once per download and a check is one
dict lookup: the signature is verified over the raw TBSCertList bytes (one hash, one
RSA verify: ~0.02 s on a 27 MB, 1,000,000-entry CRL, where cryptography's
`is_signature_valid` takes ~0.4 s), and the revokedCertificates SEQUENCE is walked here
(~0.7 s) instead of building a Python object per entry through cryptography (~0.95 s).
cryptography still parses the CRL first (~0.05 s): it validates the DER and gives the
header fields (issuer, dates, extensions). The index of 1,000,000 serials takes ~80 MB.

Each entry's CRLReason (RFC 5280 5.3.1) is kept as the value of its serial in the same
dict (None when the entry carries none): small ints are shared objects, so the reasons
cost no memory, and the common check stays one `in` on the dict. One purpose reads the
reason: a renewed card (superseded) may move its MyKey ID to its successor (docs/
identity.md "Renewed and replaced cards"); every other check treats any entry as revoked.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from .der import SEQUENCE, DERError, expect, read_header
from .trust import TrustAnchor

# sha256WithRSAEncryption AlgorithmIdentifier, with NULL parameters and without.
_SHA256_RSA_IDS = frozenset(
    {
        bytes.fromhex("300d06092a864886f70d01010b0500"),
        bytes.fromhex("300b06092a864886f70d01010b"),
    }
)
_CERTIFICATE_ISSUER_OID = b"\x06\x03\x55\x1d\x1d"  # 2.5.29.29 in an entry: indirect CRL
_CRITICAL_TRUE = b"\x01\x01\xff"
_REASON_CODE_OID = b"\x06\x03\x55\x1d\x15"  # 2.5.29.21 reasonCode
# The usual entry extensions: exactly one, a non-critical reasonCode (value in the last byte).
_REASON_ONLY = b"\x30\x0c\x30\x0a" + _REASON_CODE_OID + b"\x04\x03\x0a\x01"


class CrlReason(enum.IntEnum):
    """CRLReason values (RFC 5280 5.3.1) the platform tells apart."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1  # a lost or stolen card (J-LIS: 紛失・盗難)
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4  # a renewed certificate (更新) replaced this one
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGE_WITHDRAWN = 9
    AA_COMPROMISE = 10


# Extensions of a full, direct CRL that we understand; any other critical one refuses it.
_HANDLED_CRL_EXTENSIONS = frozenset(
    {
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)


class CrlError(ValueError):
    """This CRL cannot be used: malformed, wrongly signed, or of a kind we do not handle."""


@dataclass(frozen=True, slots=True)
class RevocationList:
    """A verified CRL reduced to what a check needs: its dates and the revoked serials."""

    anchor_fingerprint: str
    this_update: float  # POSIX seconds
    next_update: float
    crl_number: int | None
    # The revoked serials, as dict keys, each with its CRLReason or None: a dict of ints
    # is never tracked by the garbage collector, a set is, and a full collection walking
    # a 1,000,000-entry set costs ~8 ms every time it runs.
    serials: dict[int, int | None]
    load_seconds: float

    def __contains__(self, serial: object) -> bool:
        return serial in self.serials

    def __len__(self) -> int:
        return len(self.serials)

    def reason(self, serial: int) -> int | None:
        """The CRLReason of a revoked serial (None: not revoked, or revoked without one)."""
        return self.serials.get(serial)


def _as_der(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        try:  # PEM CRLs are rare (J-LIS and HTTP distribution points serve DER)
            return x509.load_pem_x509_crl(data).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise CrlError(f"unreadable PEM CRL: {exc}") from exc
    return data


def load_crl(
    data: bytes,
    anchor: TrustAnchor,
    *,
    max_age_s: float | None = None,
) -> RevocationList:
    """Verify `data` as a CRL issued by `anchor` and index its revoked serials.

    A CRL without nextUpdate gets thisUpdate + `max_age_s`, or is refused when that is None.
    Freshness against the clock is the caller's business (`RevocationChecker`).
    """
    started = time.perf_counter()
    der = _as_der(data)
    try:
        crl = x509.load_der_x509_crl(der)
        issuer, this_update, next_update = crl.issuer, crl.last_update_utc, crl.next_update_utc
        extensions = crl.extensions
    except ValueError as exc:
        raise CrlError(f"malformed CRL: {exc}") from exc
    if issuer != anchor.subject:
        raise CrlError("CRL issuer is not the certificate's issuer")
    _check_crl_signer(anchor)
    try:
        tbs, revoked_span = _split(der)
    except (DERError, IndexError) as exc:
        raise CrlError(f"malformed CRL: {exc}") from exc
    _verify_signature(crl, der, tbs, anchor)
    crl_number = _check_extensions(extensions)
    if next_update is None:
        if max_age_s is None:
            raise CrlError("CRL has no nextUpdate")
        next_at = this_update.timestamp() + max_age_s
    else:
        next_at = next_update.timestamp()
    try:
        serials = _revoked_serials(der, *revoked_span) if revoked_span else {}
    except (DERError, IndexError) as exc:
        raise CrlError(f"malformed revokedCertificates: {exc}") from exc
    return RevocationList(
        anchor_fingerprint=anchor.fingerprint,
        this_update=this_update.timestamp(),
        next_update=next_at,
        crl_number=crl_number,
        serials=serials,
        load_seconds=time.perf_counter() - started,
    )


def _check_crl_signer(anchor: TrustAnchor) -> None:
    try:
        ku = anchor.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not ku.crl_sign:
        raise CrlError("the issuing CA may not sign CRLs (keyUsage lacks cRLSign)")


def _split(der: bytes) -> tuple[tuple[bytes, bytes, bytes], tuple[int, int] | None]:
    """((tbs, inner alg, outer alg + signature), span of revokedCertificates content)."""
    end = len(der)
    start, stop = expect(der, 0, end, SEQUENCE)
    if stop != end:
        raise DERError("trailing bytes after the CRL")
    tbs_start, tbs_end = expect(der, start, stop, SEQUENCE)
    tbs_tlv = der[start:tbs_end]
    _, _, alg_end = read_header(der, tbs_end, stop)
    outer_alg = der[tbs_end:alg_end]
    bits_start, bits_end = expect(der, alg_end, stop, 0x03)
    if bits_start >= bits_end or der[bits_start] != 0:
        raise DERError("signature BIT STRING has unused bits")
    signature = der[bits_start + 1 : bits_end]
    # Inside TBSCertList: version?, signature, issuer, thisUpdate, nextUpdate?, revoked?
    pos = tbs_start
    tag, _, field_end = read_header(der, pos, tbs_end)
    if tag == 0x02:  # version (v2)
        pos = field_end
    _, _, inner_alg_end = read_header(der, pos, tbs_end)
    inner_alg = der[pos:inner_alg_end]
    pos = inner_alg_end
    _, _, pos = read_header(der, pos, tbs_end)  # issuer
    _, _, pos = read_header(der, pos, tbs_end)  # thisUpdate
    span: tuple[int, int] | None = None
    if pos < tbs_end:
        tag, content, field_end = read_header(der, pos, tbs_end)
        if tag in (0x17, 0x18):  # nextUpdate
            pos = field_end
    if pos < tbs_end:
        tag, content, field_end = read_header(der, pos, tbs_end)
        if tag == SEQUENCE:
            span = (content, field_end)
    if inner_alg != outer_alg:
        raise DERError("signature algorithm inside and outside the TBS differ")
    return (tbs_tlv, outer_alg, signature), span


def _verify_signature(
    crl: x509.CertificateRevocationList,
    der: bytes,
    tbs: tuple[bytes, bytes, bytes],
    anchor: TrustAnchor,
) -> None:
    tbs_tlv, alg, signature = tbs
    key = anchor.certificate.public_key()
    if alg in _SHA256_RSA_IDS and isinstance(key, rsa.RSAPublicKey):
        try:
            key.verify(signature, tbs_tlv, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise CrlError("CRL signature does not verify with the issuing CA's key") from None
        return
    # Any other algorithm: let cryptography decide (slower, but general).
    if not crl.is_signature_valid(key):  # type: ignore[arg-type]
        raise CrlError("CRL signature does not verify with the issuing CA's key")


def _check_extensions(extensions: x509.Extensions) -> int | None:
    """Refuse delta, indirect and partial-scope CRLs; return the cRLNumber if present."""
    crl_number: int | None = None
    for ext in extensions:
        value = ext.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise CrlError("delta CRLs are not supported; configure the full CRL")
        if isinstance(value, x509.IssuingDistributionPoint) and (
            value.indirect_crl
            or value.only_some_reasons
            or value.only_contains_ca_certs
            or value.only_contains_attribute_certs
        ):
            raise CrlError("CRL scope does not cover every user certificate")
        if isinstance(value, x509.CRLNumber):
            crl_number = value.crl_number
        if ext.critical and ext.oid not in _HANDLED_CRL_EXTENSIONS:
            raise CrlError(f"unknown critical CRL extension {ext.oid.dotted_string}")
    return crl_number


def _revoked_serials(buf: bytes, pos: int, end: int) -> dict[int, int | None]:
    """Walk revokedCertificates: SEQUENCE OF { serial INTEGER, date Time, extensions? }.

    The CRL was parsed by cryptography and its signature checked before this runs; the
    loop (~0.7 us an entry) still checks tags and bounds and stops on anything it does not
    expect, because a misread entry would be a revoked card let through.
    """
    serials: dict[int, int | None] = {}
    from_bytes = int.from_bytes
    while pos < end:
        if buf[pos] != SEQUENCE:
            raise DERError("revoked entry is not a SEQUENCE")
        length = buf[pos + 1]
        if length < 0x80:
            start = pos + 2
        elif length == 0x81:
            length, start = buf[pos + 2], pos + 3
        elif length == 0x82:
            length, start = (buf[pos + 2] << 8) | buf[pos + 3], pos + 4
        else:
            raise DERError("revoked entry too long")
        stop = start + length
        if stop > end or buf[start] != 0x02:
            raise DERError("revoked entry without a serial INTEGER")
        serial_len = buf[start + 1]
        if not 0 < serial_len < 0x80:
            raise DERError("bad serial length")
        date_pos = start + 2 + serial_len
        if buf[date_pos] not in (0x17, 0x18):
            raise DERError("revocationDate is not a Time")
        ext_pos = date_pos + 2 + buf[date_pos + 1]
        reason = None
        if ext_pos != stop:
            reason = _check_entry_extensions(buf[ext_pos:stop])
        serials[from_bytes(buf[start + 2 : date_pos], "big", signed=True)] = reason
        pos = stop
    if pos != end:
        raise DERError("revokedCertificates overruns its SEQUENCE")
    return serials


def _check_entry_extensions(ext: bytes) -> int | None:
    """The entry's CRLReason, if it has one. Entry extensions: reasonCode,
    invalidityDate... are fine (every entry counts as revoked, a suspension included:
    fail closed); certificateIssuer (an indirect CRL) or any critical entry extension
    makes the CRL unusable here.

    Byte screens first (most entries carry only a non-critical reasonCode: its exact
    encoding), the full parse only when a screen sees one of the markers.
    """
    if len(ext) == len(_REASON_ONLY) + 1 and ext.startswith(_REASON_ONLY):
        return ext[-1]
    if (
        _CERTIFICATE_ISSUER_OID not in ext
        and _CRITICAL_TRUE not in ext
        and _REASON_CODE_OID not in ext
    ):
        return None
    reason: int | None = None
    start, end = expect(ext, 0, len(ext), SEQUENCE)
    if end != len(ext):
        raise DERError("trailing bytes after entry extensions")
    pos = start
    while pos < end:
        ext_start, ext_end = expect(ext, pos, end, SEQUENCE)
        _, oid_end = expect(ext, ext_start, ext_end, 0x06)
        if ext[ext_start:oid_end] == _CERTIFICATE_ISSUER_OID:
            raise DERError("indirect CRL entry (certificateIssuer)")
        tag, flag_start, flag_end = read_header(ext, oid_end, ext_end)
        if tag == 0x01 and ext[flag_start:flag_end] != b"\x00":
            raise DERError("critical CRL entry extension")
        if ext[ext_start:oid_end] == _REASON_CODE_OID:
            value_start = flag_end if tag == 0x01 else oid_end
            octets_start, octets_end = expect(ext, value_start, ext_end, 0x04)
            enum_start, enum_end = expect(ext, octets_start, octets_end, 0x0A)
            if enum_end - enum_start != 1:
                raise DERError("reasonCode is not one byte")
            reason = ext[enum_start]
        pos = ext_end
    return reason
