"""The officer's online shops: a merchant of category online_goods gets its checkout
settings (registered origins, webhook URL), its signing secret and its API keys here.

The signing secret and an API key are returned once, to be shown on that answer only;
the audit log names a key's public id and says a secret was made, never the secret.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from .. import audit
from ..checkout import keys as shop_keys
from ..checkout.models import Shop
from ..checkout.signing import check_origin, check_url_on
from ..errors import Code, InvalidInput, Refused
from ..models import Merchant, MerchantCategory
from ..validation import utc_now
from . import Officer
from .merchants import own_merchant

MAX_ORIGINS = 5


def _shop_merchant(session: Session, who: Officer, merchant_id: int) -> Merchant:
    merchant = own_merchant(session, who, merchant_id)
    if merchant.category != MerchantCategory.ONLINE_GOODS.value:
        raise Refused(Code.NOT_A_SHOP)
    return merchant


def _subject(merchant: Merchant) -> str:
    return f"{merchant.code} {merchant.name}"


def new_secret() -> str:
    """A fresh signing secret (256 random bits, URL-safe text)."""
    return "whsec_" + secrets.token_urlsafe(32)


def save_settings(
    session: Session,
    who: Officer,
    merchant_id: int,
    *,
    origins_text: str,
    webhook_url: str,
    allow_loopback: bool,
    now: datetime | None = None,
) -> tuple[Shop, str]:
    """Set the shop's origins (one per line) and webhook URL (on one of them, or empty).
    Returns the shop and, the first time, its new signing secret (else '')."""
    merchant = _shop_merchant(session, who, merchant_id)
    origins: list[str] = []
    for line in origins_text.splitlines():
        if line.strip():
            origin = check_origin(line, allow_loopback_http=allow_loopback)
            if origin not in origins:
                origins.append(origin)
    if not origins or len(origins) > MAX_ORIGINS:
        raise InvalidInput(Code.INVALID_ORIGIN, f"1-{MAX_ORIGINS} origins")
    hook = webhook_url.strip() or None
    if hook is not None:
        hook = check_url_on(hook, origins, Code.INVALID_ORIGIN)
    now = utc_now(now)
    shop = session.get(Shop, merchant.id)
    secret = ""
    before = (
        {} if shop is None else {"origins": " ".join(shop.origins), "webhook": shop.webhook_url}
    )
    if shop is None:
        secret = new_secret()
        shop = Shop(merchant_id=merchant.id, origins=origins, signing_secret=secret)
        session.add(shop)
    shop.origins, shop.webhook_url, shop.updated_at = origins, hook, now
    changes = audit.diff(before, {"origins": " ".join(origins), "webhook": hook})
    if secret:
        changes["signing_secret"] = [None, "(new)"]
    if changes:
        who.log(session, "shop.settings", _subject(merchant), changes, now)
    session.commit()
    return shop, secret


def renew_secret(
    session: Session, who: Officer, merchant_id: int, *, now: datetime | None = None
) -> str:
    """Replace the shop's signing secret (results and webhooks are signed with the new
    one from now on); returned once."""
    merchant = _shop_merchant(session, who, merchant_id)
    shop = session.get(Shop, merchant.id)
    if shop is None:
        raise Refused(Code.NOT_A_SHOP, "save the shop's origins first")
    shop.signing_secret, shop.updated_at = new_secret(), utc_now(now)
    who.log(session, "shop.secret", _subject(merchant), {"signing_secret": ["(old)", "(new)"]}, now)
    session.commit()
    return shop.signing_secret


def issue_key(
    session: Session, who: Officer, merchant_id: int, *, now: datetime | None = None
) -> str:
    """A new API key for the shop, returned once (the log names its public id)."""
    merchant = _shop_merchant(session, who, merchant_id)
    key = shop_keys.issue_key(session, merchant.id, now=now)
    who.log(
        session, "shop.key_issue", _subject(merchant), {"key_id": [None, key.split("_")[1]]}, now
    )
    session.commit()
    return key


def revoke_key(
    session: Session, who: Officer, merchant_id: int, key_id: str, *, now: datetime | None = None
) -> None:
    """Revoke one of the shop's keys: requests with it fail from the next one on."""
    merchant = _shop_merchant(session, who, merchant_id)
    shop_keys.revoke_key(session, merchant.id, key_id, now=now)
    who.log(session, "shop.key_revoke", _subject(merchant), {"key_id": [key_id, None]}, now)
    session.commit()
