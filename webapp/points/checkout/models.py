"""Checkout tables: an online shop's settings and keys, its checkouts, and the webhook
outbox.

A checkout names its merchant, the shop's order reference and the amount; once paid it
points at the ledger's spend transfer. It keeps no MyKey ID: who paid is in the ledger
only (the citizen's own account), and nothing here or in what the shop receives says it
(ARCHITECTURE rule 2).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ...db import Base
from ..models import BigId, UtcDateTime, _in


class CheckoutStatus(StrEnum):
    """Where a checkout stands (an open one past its expiry reads as expired)."""

    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    """A webhook delivery: waiting (first or next try), delivered, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Shop(Base):
    """An online shop's settings (a merchant of category online_goods): the origins its
    return URLs must be on, where its webhooks go, and the secret results are signed with.

    The signing secret is kept as is: the platform must sign with it (an HMAC needs the
    secret itself). It is shown to the officer once, when made, and can be replaced."""

    __tablename__ = "points_shops"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("points_merchants.id"), primary_key=True)
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    signing_secret: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class MerchantKey(Base):
    """A shop's API key, stored as SHA-256 of its secret; at most two live for rotation."""

    __tablename__ = "points_merchant_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("points_merchants.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # public half, for lookup
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Checkout(Base):
    """One checkout an online shop made (ネット購入): amount, order reference, return URL."""

    __tablename__ = "points_checkouts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_in("status", CheckoutStatus), name="status"),
    )

    # Public and unguessable (it is the checkout page's address): 128 random bits.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("points_merchants.id"))
    reference: Mapped[str] = mapped_column(String(64))  # the shop's order reference
    amount: Mapped[int] = mapped_column(BigInteger)
    return_url: Mapped[str] = mapped_column(String(1000))
    payload_hash: Mapped[str] = mapped_column(String(64))  # what a replay must match
    status: Mapped[str] = mapped_column(String(16))
    spend_transfer_id: Mapped[int | None] = mapped_column(ForeignKey("points_transfers.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One event for a shop's webhook (the outbox): written in the same transaction as
    what it tells, sent by `flask points deliver-webhooks` with retries and backoff."""

    __tablename__ = "points_webhook_outbox"
    __table_args__ = (
        CheckConstraint(_in("status", DeliveryStatus), name="status"),
        Index("ix_points_webhook_outbox_due", "status", "next_attempt_at"),
        Index("ix_points_webhook_outbox_merchant", "merchant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("points_merchants.id"))
    checkout_id: Mapped[str] = mapped_column(ForeignKey("points_checkouts.id"))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (and signed)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


CHECKOUT_TABLES: list[Any] = [m.__table__ for m in (Shop, MerchantKey, Checkout, WebhookDelivery)]
