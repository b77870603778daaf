"""Just enough strict DER reading for what cryptography does not hand us raw.

Two needs: the raw pieces of a certificate (the TBS bytes and signature, to verify the
issuer's signature without re-encoding; the issuer Name and serial INTEGER bytes, the
input of the card's keyed hash, which must not depend on how a library re-encodes a
Name), and the headers crl.py needs to find and walk a CRL's revokedCertificates (a
1,000,000-entry CRL is ~27 MB: a Python object per entry through cryptography costs
~0.9 s, the walk ~0.5 s).
Definite lengths only, single-byte tags only (all X.509 needs), minimal length forms.
"""

from __future__ import annotations

from typing import NamedTuple

SEQUENCE = 0x30
INTEGER = 0x02
CONTEXT_0 = 0xA0


class DERError(ValueError):
    """The bytes are not the strict DER this reader expects."""


def read_header(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read the TLV header at `pos`: (tag, content start, content end), within `end`."""
    if pos + 2 > end:
        raise DERError("truncated header")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DERError("multi-byte tags are not used in X.509")
    first = buf[pos + 1]
    start = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DERError("indefinite or oversized length")
        if start + count > end:
            raise DERError("truncated length")
        length = int.from_bytes(buf[start : start + count], "big")
        if length < 0x80 or (count > 1 and buf[start] == 0):
            raise DERError("non-minimal length")
        start += count
    if start + length > end:
        raise DERError("content runs past its container")
    return tag, start, start + length


def expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """Read a TLV that must carry `tag`: (content start, content end)."""
    got, start, stop = read_header(buf, pos, end)
    if got != tag:
        raise DERError(f"expected tag {tag:#04x}, got {got:#04x}")
    return start, stop


class CertificateParts(NamedTuple):
    """The raw pieces of a certificate, as signed: what chain checks and card keys use."""

    tbs: bytes  # TBSCertificate TLV: the bytes the issuer signed
    inner_algorithm: bytes  # AlgorithmIdentifier TLV inside the TBS
    outer_algorithm: bytes  # AlgorithmIdentifier TLV after it
    signature: bytes  # signatureValue BIT STRING content without the unused-bits byte
    serial_bytes: bytes  # serialNumber INTEGER content
    issuer_der: bytes  # issuer Name TLV
    subject_der: bytes  # subject Name TLV
    v3: bool  # version field present and 2 (v3)


def certificate_parts(cert_der: bytes) -> CertificateParts:
    """Split a DER certificate into its raw signed pieces (RFC 5280 section 4.1)."""
    end = len(cert_der)
    cert_start, cert_end = expect(cert_der, 0, end, SEQUENCE)
    if cert_end != end:
        raise DERError("trailing bytes after the certificate")
    tbs_start, tbs_end = expect(cert_der, cert_start, cert_end, SEQUENCE)
    _, _, outer_end = read_header(cert_der, tbs_end, cert_end)
    bits_start, bits_end = expect(cert_der, outer_end, cert_end, 0x03)
    if bits_end != cert_end or bits_start == bits_end or cert_der[bits_start] != 0:
        raise DERError("bad signatureValue")
    pos = tbs_start
    v3 = False
    tag, start, stop = read_header(cert_der, pos, tbs_end)
    if tag == CONTEXT_0:  # [0] EXPLICIT version
        v3 = cert_der[start:stop] == b"\x02\x01\x02"
        pos = stop
        tag, start, stop = read_header(cert_der, pos, tbs_end)
    if tag != INTEGER or stop == start:
        raise DERError("no serial number")
    serial = cert_der[start:stop]
    alg_pos = stop
    _, _, issuer_pos = read_header(cert_der, alg_pos, tbs_end)  # signature AlgorithmIdentifier
    tag, _, validity_pos = read_header(cert_der, issuer_pos, tbs_end)
    if tag != SEQUENCE:
        raise DERError("issuer is not a Name")
    _, _, subject_pos = read_header(cert_der, validity_pos, tbs_end)
    tag, _, subject_end = read_header(cert_der, subject_pos, tbs_end)
    if tag != SEQUENCE:
        raise DERError("subject is not a Name")
    return CertificateParts(
        tbs=cert_der[cert_start:tbs_end],
        inner_algorithm=cert_der[alg_pos:issuer_pos],
        outer_algorithm=cert_der[tbs_end:outer_end],
        signature=cert_der[bits_start + 1 : bits_end],
        serial_bytes=serial,
        issuer_der=cert_der[issuer_pos:validity_pos],
        subject_der=cert_der[subject_pos:subject_end],
        v3=v3,
    )


def serial_to_bytes(serial: int) -> bytes:
    """A serial number as DER INTEGER content (minimal two's complement)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
