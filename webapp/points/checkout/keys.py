"""Online shops' API keys: the partner API's scheme (webapp.points.partners), for shops.

A key reads `icm_<key id>_<secret>` (a partner's reads `ick_`): the key id finds the row
by a point read, the secret (256 random bits) is kept only as its SHA-256, at most two
keys are live per shop for rotation, and a key is shown once, when issued.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Code, NotFound, Refused, Unauthorized
from ..models import Merchant, MerchantCategory
from ..validation import utc_now
from .models import MerchantKey

MAX_LIVE_KEYS = 2
PREFIX = "icm"
_KEY_RE = re.compile(r"icm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_DUMMY = hashlib.sha256(b"timing filler").digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def live_keys(session: Session, merchant_id: int) -> list[MerchantKey]:
    """The shop's keys not revoked, oldest first."""
    return list(
        session.scalars(
            select(MerchantKey)
            .where(MerchantKey.merchant_id == merchant_id, MerchantKey.revoked_at.is_(None))
            .order_by(MerchantKey.id)
        )
    )


def issue_key(session: Session, merchant_id: int, *, now: datetime | None = None) -> str:
    """A new API key for the shop, shown once (only its hash is kept); added to the
    caller's transaction (not committed)."""
    if session.get(Merchant, merchant_id) is None:
        raise NotFound(Code.UNKNOWN_MERCHANT)
    if len(live_keys(session, merchant_id)) >= MAX_LIVE_KEYS:
        raise Refused(Code.TOO_MANY_KEYS)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        MerchantKey(
            merchant_id=merchant_id,
            key_id=key_id,
            secret_hash=_digest(secret),
            created_at=utc_now(now),
        )
    )
    session.flush()
    return f"{PREFIX}_{key_id}_{secret}"


def revoke_key(
    session: Session, merchant_id: int, key_id: str, *, now: datetime | None = None
) -> MerchantKey:
    """Revoke one of the shop's keys by its public id (in the caller's transaction)."""
    key = session.scalar(
        select(MerchantKey).where(
            MerchantKey.key_id == key_id, MerchantKey.merchant_id == merchant_id
        )
    )
    if key is None:
        raise NotFound(Code.UNKNOWN_MERCHANT, "no such key")
    if key.revoked_at is None:
        key.revoked_at = utc_now(now)
    return key


def authenticate(session: Session, presented: str | None) -> Merchant:
    """The active online shop owning the presented key, or Unauthorized (one reason)."""
    match = _KEY_RE.fullmatch(presented or "")
    key = None
    if match:
        key = session.scalar(
            select(MerchantKey).where(
                MerchantKey.key_id == match.group(1), MerchantKey.revoked_at.is_(None)
            )
        )
    # Compare even when there is no row, so timing does not tell a known key id apart.
    expected = key.secret_hash if key is not None else _DUMMY
    given = _digest(match.group(2)) if match else b""
    if key is None or not hmac.compare_digest(expected, given):
        raise Unauthorized(Code.UNAUTHORIZED)
    merchant = session.get(Merchant, key.merchant_id)
    if (
        merchant is None
        or not merchant.active
        or merchant.category != MerchantCategory.ONLINE_GOODS.value
    ):
        raise Unauthorized(Code.UNAUTHORIZED)
    return merchant
