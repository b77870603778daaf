"""A ready-made online shop for the demo and the tests: the merchant, its settings, a
key and its signing secret (what an officer sets up on the merchant page)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import admin
from ..models import AcceptedCategory, Merchant, MerchantCategory
from ..validation import utc_now
from . import keys
from .models import Shop

SHOP_CODE = "SHOP-ONLINE"
SHOP_NAME = "いちまい市 物産オンラインショップ"


@dataclass(frozen=True)
class DemoShopAccount:
    """The shop merchant and what its owner is handed once: the key and the secret."""

    merchant_id: int
    api_key: str
    signing_secret: str


def build_shop(
    session: Session, municipality_id: int, origin: str, *, webhook: bool = True
) -> DemoShopAccount:
    """An online shop of the municipality on `origin` (webhooks to <origin>/webhook)."""
    accepted = admin.accepted_categories(session, municipality_id)
    if MerchantCategory.ONLINE_GOODS.value not in accepted:
        session.add(
            AcceptedCategory(
                municipality_id=municipality_id, category=MerchantCategory.ONLINE_GOODS.value
            )
        )
        session.commit()
    merchant = session.scalar(
        select(Merchant).where(
            Merchant.municipality_id == municipality_id, Merchant.code == SHOP_CODE
        )
    ) or admin.create_merchant(
        session, municipality_id, SHOP_CODE, SHOP_NAME, MerchantCategory.ONLINE_GOODS
    )
    secret = "whsec_demo_" + keys.secrets.token_urlsafe(24)
    session.merge(
        Shop(
            merchant_id=merchant.id,
            origins=[origin],
            webhook_url=f"{origin}/webhook" if webhook else None,
            signing_secret=secret,
            updated_at=utc_now(),
        )
    )
    key = keys.issue_key(session, merchant.id)
    session.commit()
    return DemoShopAccount(merchant.id, key, secret)
