"""Partner API keys: issue, rotate, revoke, authenticate.

A key reads `ick_<key id>_<secret>`: the key id (public, 16 hex digits) finds the row by
a point read, the secret (256 random bits) is kept only as its SHA-256. A fast hash is
enough for a random 256-bit secret (no dictionary to guess from); a slow password hash
would only cost CPU on every API call. At most two keys per partner are live at once,
so a partner rotates by adding the new key, switching over, and revoking the old one.

Why keys rather than HMAC-signed requests: a signature check needs the secret itself at
rest (encrypted, with a key to manage), while a key needs only its hash; TLS protects the
key in transit and every write is idempotent on the partner's reference, so a replayed
request cannot convert twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import Code, NotFound, Refused, Unauthorized
from .models import Partner, PartnerKey
from .validation import utc_now

MAX_LIVE_KEYS = 2
_KEY_RE = re.compile(r"ick_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_DUMMY = hashlib.sha256(b"timing filler").digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def live_keys(session: Session, partner_id: int) -> list[PartnerKey]:
    """The partner's keys not revoked, oldest first."""
    return list(
        session.scalars(
            select(PartnerKey)
            .where(PartnerKey.partner_id == partner_id, PartnerKey.revoked_at.is_(None))
            .order_by(PartnerKey.id)
        )
    )


def issue_key(
    session: Session, partner_id: int, *, now: datetime | None = None, commit: bool = True
) -> str:
    """A new API key for the partner, shown once (only its hash is kept); `commit` False
    leaves it in the caller's transaction."""
    if session.get(Partner, partner_id) is None:
        raise NotFound(Code.UNKNOWN_PARTNER)
    if len(live_keys(session, partner_id)) >= MAX_LIVE_KEYS:
        raise Refused(Code.TOO_MANY_KEYS)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        PartnerKey(
            partner_id=partner_id,
            key_id=key_id,
            secret_hash=_digest(secret),
            created_at=utc_now(now),
        )
    )
    if commit:
        session.commit()
    return f"ick_{key_id}_{secret}"


def revoke_key(session: Session, key_id: str, *, now: datetime | None = None) -> None:
    """Revoke a key by its public id; requests with it fail from the next one on."""
    key = session.scalar(select(PartnerKey).where(PartnerKey.key_id == key_id))
    if key is None:
        raise NotFound(Code.UNKNOWN_PARTNER)
    if key.revoked_at is None:
        key.revoked_at = utc_now(now)
    session.commit()


def authenticate(session: Session, presented: str | None) -> Partner:
    """The active partner owning the presented key, or Unauthorized (one reason for all)."""
    match = _KEY_RE.fullmatch(presented or "")
    key = None
    if match:
        key = session.scalar(
            select(PartnerKey).where(
                PartnerKey.key_id == match.group(1), PartnerKey.revoked_at.is_(None)
            )
        )
    # Compare even when there is no row, so timing does not tell a known key id apart.
    expected = key.secret_hash if key is not None else _DUMMY
    given = _digest(match.group(2)) if match else b""
    if key is None or not hmac.compare_digest(expected, given):
        raise Unauthorized(Code.UNAUTHORIZED)
    partner = session.get(Partner, key.partner_id)
    if partner is None or not partner.active:
        raise Unauthorized(Code.UNAUTHORIZED)
    return partner
