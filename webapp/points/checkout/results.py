"""The signed result a citizen carries back to the shop (signing.result_url)."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from ..validation import utc_now
from . import services
from .models import Checkout, Shop
from .signing import result_url


def signed_result(session: Session, c: Checkout) -> str:
    """The shop's return URL with this checkout's status now, signed with its secret."""
    shop = session.get(Shop, c.merchant_id)
    assert shop is not None  # noqa: S101  (a checkout is made only for a shop)
    return result_url(
        c.return_url,
        shop.signing_secret,
        checkout_id=c.id,
        reference=c.reference,
        status=services.status_of(c, utc_now()),
        amount=c.amount,
        ts=int(time.time()),
    )
