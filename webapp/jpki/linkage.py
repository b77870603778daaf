"""J-LIS's old-to-new certificate linkage (電子証明書の新旧紐付け), read and checked.

When a card's user-authentication certificate is renewed or a lost card replaced, J-LIS
tells certified operators which new certificate (issuer + serial) follows which old one.
Here a linkage document is fetched, its signature checked against the configured signer
certificates (fail closed: a bad or missing signature, an unknown format or a malformed
entry refuses the whole document), and each pair turned into card keys at once: the
serials live only in memory during the import, never in the database or a log.

The format is the demo J-LIS's (bridge/vcard/jlis.py, `ichimai-demo-jlis-linkage/1`):

    {"body": {"format", "notice", "published_at",
              "entries": [{"kind": "renewal"|"reissue", "at",
                           "old": {"issuer": b64 Name DER, "serial": hex INTEGER content,
                                   "not_after"},
                           "new": {...}}]},
     "signature": b64 RSA PKCS#1 v1.5 SHA-256 over the body as canonical JSON}

A real operator's J-LIS feed would be read by another parser producing the same pairs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..identity.renewal import Move
from .crl_sources import CrlFetchError, fetch_url

FORMAT = "ichimai-demo-jlis-linkage/1"
KINDS = ("renewal", "reissue")
MAX_BYTES = 256 * 1024 * 1024
DEMO_SIGNER_FILE = "linkage_signer.pem"  # written by the demo J-LIS next to its CAs
_MAX_ISSUER = 1024
_MAX_SERIAL = 20  # RFC 5280: at most 20 octets


class LinkageError(ValueError):
    """The document was not taken in: unreadable, unsigned, badly signed or malformed."""


@dataclass(frozen=True)
class LinkagePair:
    """One old certificate and its successor, as the card key is made of them."""

    old_issuer: bytes
    old_serial: bytes
    new_issuer: bytes
    new_serial: bytes
    new_not_after: datetime
    kind: str

    def move(self, key_of: Callable[[bytes, bytes], bytes]) -> Move:
        """The same pair as card keys (`key_of(issuer, serial)`: Verifier.card_key_of)."""
        return Move(
            old_key=key_of(self.old_issuer, self.old_serial),
            new_key=key_of(self.new_issuer, self.new_serial),
            new_not_after=self.new_not_after,
        )


def fetch(location: str) -> bytes:
    """The document at an http(s) URL or a file path (bounded in size)."""
    if urlsplit(location).scheme in ("http", "https"):
        try:
            return fetch_url(location, max_bytes=MAX_BYTES)
        except CrlFetchError as exc:
            raise LinkageError(f"could not fetch {location}: {exc}") from exc
    path = Path(location)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise LinkageError(f"{location} is larger than {MAX_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise LinkageError(f"could not read {location}: {exc.strerror or exc}") from exc


def signers_from_settings(settings: Mapping[str, Any]) -> list[x509.Certificate]:
    """The certificates whose keys may sign linkage: JPKI_LINKAGE_SIGNERS (PEM paths), and
    the demo J-LIS's linkage signer in demo mode only."""
    paths = [Path(p) for p in settings.get("JPKI_LINKAGE_SIGNERS") or []]
    demo_dir = settings.get("DEMO_JLIS_DIR") or ""
    if settings.get("DEMO_MODE") and demo_dir and (Path(demo_dir) / DEMO_SIGNER_FILE).exists():
        paths.append(Path(demo_dir) / DEMO_SIGNER_FILE)
    return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths]


def canonical(body: Any) -> bytes:
    """The bytes a signature covers: the body as canonical JSON."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_signature(body: Any, signature: bytes, signers: Iterable[x509.Certificate]) -> None:
    payload = canonical(body)
    for signer in signers:
        key = signer.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            return
        except InvalidSignature:
            continue
    raise LinkageError("the linkage is not signed by a configured J-LIS linkage signer")


def _b64(value: Any, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 2:
        raise LinkageError(f"{what} is not base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise LinkageError(f"{what} is not base64") from exc
    if not 0 < len(raw) <= limit or raw[0] != 0x30:
        raise LinkageError(f"{what} is not a Name")
    return raw


def _serial(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) > _MAX_SERIAL * 2:
        raise LinkageError(f"{what} is not a serial")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise LinkageError(f"{what} is not hex") from exc
    if not raw:
        raise LinkageError(f"{what} is empty")
    return raw


def _when(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise LinkageError(f"{what} is not a date and time with a time zone")
    return moment


def _pair(entry: Any, n: int) -> LinkagePair:
    if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
        raise LinkageError(f"entry {n}: not a renewal or a reissue")
    old, new = entry.get("old"), entry.get("new")
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise LinkageError(f"entry {n}: no old or no new certificate")
    return LinkagePair(
        old_issuer=_b64(old.get("issuer"), f"entry {n}: old issuer", _MAX_ISSUER),
        old_serial=_serial(old.get("serial"), f"entry {n}: old serial"),
        new_issuer=_b64(new.get("issuer"), f"entry {n}: new issuer", _MAX_ISSUER),
        new_serial=_serial(new.get("serial"), f"entry {n}: new serial"),
        new_not_after=_when(new.get("not_after"), f"entry {n}: new not_after"),
        kind=entry["kind"],
    )


def parse(data: bytes, signers: Iterable[x509.Certificate]) -> list[LinkagePair]:
    """Every pair of a signed linkage document, in its order; LinkageError otherwise."""
    signers = list(signers)
    if not signers:
        raise LinkageError("no J-LIS linkage signer is configured (ICHIMAI_JPKI_LINKAGE_SIGNER)")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise LinkageError("the linkage is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("body"), dict):
        raise LinkageError("the linkage has no body")
    body = document["body"]
    signature = document.get("signature")
    if not isinstance(signature, str):
        raise LinkageError("the linkage is not signed")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except binascii.Error as exc:
        raise LinkageError("the linkage signature is not base64") from exc
    _check_signature(body, raw_signature, signers)
    if body.get("format") != FORMAT:
        raise LinkageError(f"unknown linkage format {str(body.get('format'))[:40]!r}")
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise LinkageError("the linkage has no entries")
    return [_pair(entry, n) for n, entry in enumerate(entries, 1)]
