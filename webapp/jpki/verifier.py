"""The platform's card check: chain -> validity -> revocation -> signature, Web eID's way.

Cost model (RSA-2048, one core, measured): the signature check is ~20 us; parsing a
certificate and verifying its issuer's signature costs as much again and more, so a
naive check spends most of its time on work that is the same every time a card comes
back. So the clock-free part of a certificate's check (parse, shape, chain to an anchor, public
key object, card_key) is cached per SHA-256 of its DER in a bounded LRU; what can change
between two checks stays per check: leaf and anchor validity at `now`, CRL freshness and
the serial lookup in the current CRL, and of course the signature over the rebuilt data.
The cache is emptied when the trust store or the revocation checker is replaced, and an
entry whose certificate has expired is dropped on its next use. bench/bench_auth.py
measures the result against bare RSA verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.jpki import SHA256_DIGEST_INFO_PREFIX, sha256_digest_info

from .cardkey import card_key, check_secret
from .chain import MAX_CERT_BYTES, CheckedCertificate, check_certificate, check_validity
from .challenge import Challenge, ChallengeService, signed_data_after, signed_data_prefix
from .errors import (
    BadSignature,
    CertificateExpired,
    MalformedCertificate,
    PurposeMismatch,
    TerminalMismatch,
)
from .revocation import CrlSlot, RevocationChecker
from .trust import TrustStore

DEFAULT_CACHE_SIZE = 20_000
_PKCS1V15 = padding.PKCS1v15()
_sha256 = hashlib.sha256


class VerifiedCard(NamedTuple):
    """A card the platform accepted. Nothing here is a raw card identifier.

    A NamedTuple: immutable, and a third of a frozen dataclass's construction cost,
    which shows at tens of thousands of checks a second.
    """

    card_key: bytes  # HMAC-SHA256 of issuer + serial under the server secret
    not_after: datetime  # end of the certificate's validity (renewal reminder)
    signed: bool  # True: PIN + signature over a challenge; False: certificate only
    anchor: str  # label of the trust anchor (e.g. "JPKI for user authentication 2023")
    purpose: str | None = None
    terminal_id: str | None = None
    # Revoked as superseded (a renewed certificate): only ever True when the caller
    # asked for it (`allow_superseded`, the two-card renewal step's old card).
    superseded: bool = False

    @property
    def card_key_hex(self) -> str:
        """card_key as 64 hex digits (for text columns)."""
        return self.card_key.hex()


class _Entry(NamedTuple):
    """What a check needs of a cached certificate, flat (one attribute hop each)."""

    public_key: rsa.RSAPublicKey
    serial: int
    valid_from: float  # see CheckedCertificate.valid_from
    valid_until: float
    slot: CrlSlot
    card_key: bytes
    signature_length: int
    not_after_utc: datetime
    anchor_label: str
    checked: CheckedCertificate


class _LRU:
    """A bounded map from certificate fingerprint to checked entry.

    Reads take no lock: OrderedDict.get and move_to_end are single C calls (atomic
    under the GIL) and a key evicted between the two is simply not moved. Writes,
    which may evict, hold a lock. hits/misses are statistics, not exact under threads.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _Entry | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        try:  # noqa: SIM105 - suppress() is a context manager: too slow on the hot path
            self._data.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile; the entry is still good
            pass
        self.hits += 1
        return entry

    def put(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def discard(self, key: bytes) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case; raise ValueError for anything else."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"origin must be http(s)://host[:port], got {origin!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"origin must not carry a path, query or credentials: {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


class Verifier:
    """Verifies card authentications and identifications against the configured trust."""

    def __init__(
        self,
        *,
        trust: TrustStore,
        revocation: RevocationChecker,
        challenges: ChallengeService,
        origin: str,
        card_key_secret: bytes,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trust = trust
        self.revocation = revocation
        self.challenges = challenges
        self.origin = normalize_origin(origin)
        self._prefix = signed_data_prefix(self.origin)
        self._secret = check_secret(card_key_secret)
        self._cache = _LRU(cache_size)
        self._generation = 0
        self._clock = clock

    # what the card signs

    def data_to_sign(self, challenge: Challenge) -> bytes:
        """The bytes the card signs for `challenge` (as the verifier will rebuild them)."""
        return signed_data_after(
            self._prefix, challenge.nonce, challenge.purpose, challenge.terminal_id
        )

    def digest_info_to_sign(self, challenge: Challenge) -> bytes:
        """The SHA-256 DigestInfo to send to the card's COMPUTE DIGITAL SIGNATURE."""
        return sha256_digest_info(self.data_to_sign(challenge))

    # checks

    def verify_authentication(
        self,
        cert_der: bytes,
        signature: bytes,
        nonce: str,
        *,
        expected_purpose: str | None = None,
        expected_terminal: str | None = None,
        allow_superseded: bool = False,
    ) -> VerifiedCard:
        """Burn the nonce, then chain, validity, revocation and signature; or raise.

        `allow_superseded`: for the two-card renewal step's old card only (the card flow
        asks it for that purpose and that card): a certificate revoked as superseded is
        accepted and marked so (`superseded`); any other revocation still raises.
        """
        record = self.challenges.take(nonce)
        if expected_purpose is not None and record.purpose != expected_purpose:
            raise PurposeMismatch(f"challenge was issued for {record.purpose!r}")
        if expected_terminal is not None and record.terminal_id != expected_terminal:
            raise TerminalMismatch("challenge was issued for another terminal")
        # Rebuilt from our own origin and the stored record, never from client input.
        data = signed_data_after(self._prefix, nonce, record.purpose, record.terminal_id)
        entry, superseded = self._check(cert_der, self._clock(), allow_superseded)
        if type(signature) is not bytes or len(signature) != entry.signature_length:
            raise BadSignature("signature has the wrong length")
        # RFC 8017 8.2.2: undo the RSA (OpenSSL checks the type-1 padding), then compare
        # with the DigestInfo we encode ourselves: exactly what the card was given to
        # sign. Same check as verify(), ~2 us cheaper (no per-call hash/context setup).
        try:
            recovered = entry.public_key.recover_data_from_signature(signature, _PKCS1V15, None)
        except (InvalidSignature, ValueError):
            raise BadSignature("signature does not verify over the challenge") from None
        expected = SHA256_DIGEST_INFO_PREFIX + _sha256(data).digest()  # sha256_digest_info
        if not hmac.compare_digest(recovered, expected):
            raise BadSignature("signature does not verify over the challenge")
        return VerifiedCard(
            entry.card_key,
            entry.not_after_utc,
            True,
            entry.anchor_label,
            record.purpose,
            record.terminal_id,
            superseded,
        )

    def identify(self, cert_der: bytes) -> VerifiedCard:
        """PIN-less identification (libraries lend this way): chain, validity, revocation.

        Proves only that a valid, unrevoked certificate was presented, not that the card
        is present (a certificate is public data); providers choose when that suffices.
        """
        entry, _ = self._check(cert_der, self._clock())
        return VerifiedCard(entry.card_key, entry.not_after_utc, False, entry.anchor_label)

    def identify_superseded(self, cert_der: bytes) -> VerifiedCard:
        """`identify`, accepting a certificate revoked as superseded (marked `superseded`).

        For the two-card renewal step only (its old card, before the PIN); a lost card's
        key-compromise revocation, or any other, is still refused.
        """
        entry, superseded = self._check(cert_der, self._clock(), True)
        return VerifiedCard(
            entry.card_key, entry.not_after_utc, False, entry.anchor_label, superseded=superseded
        )

    # trust changes and introspection

    def replace_trust(self, trust: TrustStore) -> None:
        """Use another trust store from now on; every cached chain result is dropped."""
        self.trust = trust
        self._generation += 1
        self._cache.clear()

    def replace_revocation(self, revocation: RevocationChecker) -> None:
        """Use another revocation checker (CRL sources) from now on; drops the cache,
        whose entries point at the old checker's CRL slots."""
        self.revocation = revocation
        self._generation += 1
        self._cache.clear()

    def card_key_of(self, issuer_der: bytes, serial_bytes: bytes) -> bytes:
        """The card key of a certificate known by issuer Name DER and serial content (J-LIS
        linkage names certificates this way; webapp/jpki/linkage.py)."""
        return card_key(self._secret, issuer_der, serial_bytes)

    @property
    def cache_stats(self) -> dict[str, int]:
        """Hits, misses and size of the per-certificate cache."""
        return {"hits": self._cache.hits, "misses": self._cache.misses, "size": len(self._cache)}

    def _check(
        self, cert_der: bytes, now: float, allow_superseded: bool = False
    ) -> tuple[_Entry, bool]:
        """Chain (cached per fingerprint), then validity and revocation at `now`; the
        entry, and whether it is revoked as superseded (only with `allow_superseded`)."""
        if type(cert_der) is not bytes or not 0 < len(cert_der) <= MAX_CERT_BYTES:
            raise MalformedCertificate("missing or oversized certificate")
        fingerprint = _sha256(cert_der).digest()
        entry = self._cache.get(fingerprint)
        if entry is None:
            entry = self._check_new(cert_der, fingerprint)
        if not entry.valid_from <= now <= entry.valid_until:
            try:
                check_validity(entry.checked, now)  # names the reason (or another anchor)
            except CertificateExpired:
                self._cache.discard(fingerprint)  # it will never be valid again
                raise
        # Revocation fast path inlined (one tuple read, one compare, one lookup);
        # RevocationChecker.check does the refresh and names the reason otherwise.
        current = entry.slot.current
        if current is None or now >= current[1] or entry.serial in current[0].serials:
            superseded = self.revocation.check(
                entry.slot, entry.serial, now, allow_superseded=allow_superseded
            )
            return entry, superseded
        return entry, False

    def _check_new(self, cert_der: bytes, fingerprint: bytes) -> _Entry:
        """The clock-free checks of a certificate not in the cache; caches the result."""
        generation, trust = self._generation, self.trust
        checked = check_certificate(cert_der, trust)
        entry = _Entry(
            public_key=checked.public_key,
            serial=checked.serial,
            valid_from=checked.valid_from,
            valid_until=checked.valid_until,
            slot=self.revocation.slot_for(checked),
            card_key=card_key(self._secret, checked.issuer_der, checked.serial_bytes),
            signature_length=(checked.public_key.key_size + 7) // 8,
            not_after_utc=checked.not_after_utc,
            anchor_label=checked.anchor.label,
            checked=checked,
        )
        if generation == self._generation:  # trust not replaced meanwhile
            self._cache.put(fingerprint, entry)
        return entry
