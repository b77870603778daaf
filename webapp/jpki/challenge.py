"""Challenges (nonces) and the exact bytes a card signs, in the manner of Web eID.

A flow asks for a challenge bound to a purpose (login, link, pay...) and a terminal;
the nonce (32 random bytes, base64url) lives server side in a `NonceStore` for a short
time and is taken (burnt) by the first verification that names it, whatever the
outcome. The card signs `sha256_digest_info(signed_data(...))`; the verifier rebuilds
`signed_data` from the platform's configured origin and the stored record, never from
what the client sends, so a client cannot change what a signature is checked against.
"""

from __future__ import annotations

import base64
import heapq
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .errors import NonceExpired, NonceStoreFull, NonceUnknownOrUsed

NONCE_BYTES = 32  # 256 bits, Web eID's minimum
DEFAULT_TTL_S = 300.0  # Web eID's default nonce lifetime: time enough to type a PIN
# Kept this long after expiry so a late answer is told NONCE_EXPIRED, not UNKNOWN.
DEFAULT_EXPIRED_GRACE_S = 600.0
SIGNED_DATA_TAG = b"ichimai/jpki-auth/v1"
NONCE_CHARS = (NONCE_BYTES * 4 + 2) // 3  # unpadded base64url: 43
MAX_TERMINAL_CHARS = 128
_PURPOSE = re.compile(r"[a-z][a-z0-9_.-]{0,31}")


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def signed_data_prefix(origin: str) -> bytes:
    """The constant head of `signed_data` for one origin (the verifier keeps it)."""
    return _field(SIGNED_DATA_TAG) + _field(origin.encode("utf-8"))


def signed_data_after(prefix: bytes, nonce: str, purpose: str, terminal_id: str) -> bytes:
    """`signed_data` from a `signed_data_prefix` (saves re-encoding the constant head)."""
    n, p, t = nonce.encode("utf-8"), purpose.encode("utf-8"), terminal_id.encode("utf-8")
    # _field inlined: this runs once per check
    return b"".join(
        (
            prefix,
            len(n).to_bytes(4, "big"),
            n,
            len(p).to_bytes(4, "big"),
            p,
            len(t).to_bytes(4, "big"),
            t,
        )
    )


def signed_data(origin: str, nonce: str, purpose: str, terminal_id: str) -> bytes:
    """The bytes a card signs for a challenge: version tag + length-prefixed UTF-8 fields.

    Each field is a 4-byte big-endian length then its bytes, so no two different field
    tuples give the same bytes; the tag separates these from anything else the
    user-authentication key might ever sign.
    """
    return signed_data_after(signed_data_prefix(origin), nonce, purpose, terminal_id)


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    """What the server keeps about an issued nonce (never taken from the client)."""

    purpose: str
    terminal_id: str
    issued_at: float  # POSIX seconds
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for stores that serialize (database, Redis)."""
        return {
            "purpose": self.purpose,
            "terminal_id": self.terminal_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChallengeRecord:
        """Rebuild a record from `to_dict` output."""
        return cls(
            purpose=str(data["purpose"]),
            terminal_id=str(data["terminal_id"]),
            issued_at=float(data["issued_at"]),
            expires_at=float(data["expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class Challenge:
    """What the client gets: the nonce and what it is bound to."""

    nonce: str
    purpose: str
    terminal_id: str
    expires_at: datetime


class NonceStore(Protocol):
    """Server-side nonce records. `take` must be atomic: two takes never both succeed.

    Implementations: `InMemoryNonceStore` (one process) and `RedisNonceStore` in
    `redis_nonces` (every worker). A store that cannot reach its backend raises
    NonceStoreUnavailable from either method, never returns a record it is unsure of.
    """

    def put(self, nonce: str, record: ChallengeRecord, ttl: float) -> None:
        """Keep `record` under `nonce` for at least `ttl` seconds; raise NonceStoreFull."""
        ...

    def take(self, nonce: str) -> ChallengeRecord | None:
        """Remove and return the record, or None if unknown, already taken or dropped."""
        ...


class InMemoryNonceStore:
    """A dict for one process; expired entries are purged as new ones come (puts lock).

    Bounded: at `max_entries` live nonces a new one is refused (NonceStoreFull) rather
    than evicting a nonce a citizen may be about to use.
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._records: dict[str, tuple[ChallengeRecord, float]] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def put(self, nonce: str, record: ChallengeRecord, ttl: float) -> None:
        """Store a record until `ttl` seconds from now."""
        now = self._clock()
        with self._lock:
            self._purge(now)
            if len(self._records) >= self.max_entries:
                raise NonceStoreFull(f"{self.max_entries} challenges outstanding")
            deadline = now + ttl
            self._records[nonce] = (record, deadline)
            heapq.heappush(self._deadlines, (deadline, nonce))

    def take(self, nonce: str) -> ChallengeRecord | None:
        """Pop the record (single use), if present and not past its store deadline."""
        # dict.pop is one atomic step: of two racing takes exactly one gets the record.
        entry = self._records.pop(nonce, None)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def __len__(self) -> int:
        return len(self._records)

    def _purge(self, now: float) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, nonce = heapq.heappop(heap)
            entry = self._records.get(nonce)
            if entry is not None and entry[1] <= now:
                self._records.pop(nonce, None)  # may have been taken meanwhile


class ChallengeService:
    """Issues nonces and takes them back, exactly once."""

    def __init__(
        self,
        store: NonceStore,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        expired_grace_s: float = DEFAULT_EXPIRED_GRACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.expired_grace_s = expired_grace_s
        self._clock = clock

    def issue(self, purpose: str, terminal_id: str) -> Challenge:
        """A fresh challenge for `purpose` at `terminal_id`.

        Raises NonceStoreFull at the store's bound, NonceStoreUnavailable (retryable) when
        the store's backend is down: either way no nonce is handed out.
        """
        if not _PURPOSE.fullmatch(purpose):
            raise ValueError(f"purpose must match {_PURPOSE.pattern}")
        if len(terminal_id) > MAX_TERMINAL_CHARS or not terminal_id.isprintable():
            raise ValueError("terminal_id must be printable and at most 128 characters")
        nonce = base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()
        now = self._clock()
        record = ChallengeRecord(purpose, terminal_id, now, now + self.ttl_s)
        self.store.put(nonce, record, self.ttl_s + self.expired_grace_s)
        return Challenge(
            nonce=nonce,
            purpose=purpose,
            terminal_id=terminal_id,
            expires_at=datetime.fromtimestamp(record.expires_at, UTC),
        )

    def take(self, nonce: str) -> ChallengeRecord:
        """Burn `nonce` and return its record; raise if unknown, used or expired.

        NonceStoreUnavailable (a VerificationError, retryable) when the store is down.
        """
        # Only ASCII strings of the length we issue reach the store (bounded input); the
        # store answers None for anything else of that shape.
        if type(nonce) is not str or len(nonce) != NONCE_CHARS or not nonce.isascii():
            raise NonceUnknownOrUsed("no such challenge")
        record = self.store.take(nonce)
        if record is None:
            raise NonceUnknownOrUsed("no such challenge, or already used")
        if self._clock() > record.expires_at:
            raise NonceExpired("the challenge's life is over")
        return record
