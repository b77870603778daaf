"""Spending points at a merchant, and the merchant's refunds.

The caller (the terminal page) has already authenticated the citizen's card with the PIN
and passes the MyKey ID; this module never sees a card or a PIN. Nothing about what was
bought reaches the ledger: a spend is an amount between a citizen and a merchant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import ledger
from .admin import accepted_categories
from .errors import Code, NotFound, Refused
from .ledger import Acct, Posting
from .models import (
    Account,
    AccountKind,
    Merchant,
    Municipality,
    PointLot,
    Transfer,
    TransferKind,
)
from .retention import window
from .spend_pg import refund_alone, spend_alone
from .validation import amount as check_amount
from .validation import idempotency_key, mykey_id, payload_hash, utc_now


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the terminal shows and prints (利用明細): points spent and balance left only."""

    transfer_id: int
    merchant: str
    points: int
    balance: int
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A refund: how much went back, and how much of the payment is still refundable."""

    transfer_id: int
    spend_id: int
    points: int
    refundable_left: int
    created_at: datetime
    replayed: bool = False


def _merchant(session: Session, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(Code.UNKNOWN_MERCHANT)
    return merchant


def spendable(
    session: Session, municipality_id: int, citizen: str, now: datetime | None = None
) -> int:
    """Points the citizen can spend here now: unexpired lots (what the terminal shows)."""
    now = utc_now(now)
    total = session.scalar(
        select(func.coalesce(func.sum(PointLot.remaining), 0))
        .join(Account, Account.id == PointLot.account_id)
        .where(
            Account.municipality_id == municipality_id,
            Account.kind == AccountKind.CITIZEN.value,
            Account.owner == citizen,
            PointLot.remaining > 0,
            PointLot.expires_at > now,
        )
    )
    return int(total or 0)


def spend(
    session: Session,
    merchant_id: int,
    citizen: str,
    points: object,
    *,
    key: str,
    now: datetime | None = None,
) -> Receipt:
    """Pay `points` from the citizen to the merchant, oldest-expiring lots first."""
    amount = check_amount(points, "points")
    citizen = mykey_id(citizen)
    full_key = f"spend:{merchant_id}:{idempotency_key(key)}"
    digest = payload_hash(
        {"op": "spend", "merchant": merchant_id, "mykey_id": citizen, "points": amount}
    )
    now = utc_now(now)
    alone = spend_alone(session, merchant_id, citizen, amount, full_key, digest, now)
    if alone is not None:  # PostgreSQL: one call, its own transaction (spend_pg)
        return Receipt(alone.transfer_id, alone.merchant, amount, alone.balance, now)

    def work() -> Receipt:
        merchant = _merchant(session, merchant_id)
        if not merchant.active:
            raise Refused(Code.INACTIVE)
        if merchant.category not in accepted_categories(session, merchant.municipality_id):
            raise Refused(Code.NOT_ACCEPTED, f"category {merchant.category}")
        posting = Posting(
            kind=TransferKind.SPEND,
            debit=Acct(AccountKind.CITIZEN, merchant.municipality_id, mykey_id=citizen),
            credit=Acct(AccountKind.MERCHANT, merchant.municipality_id, id=merchant.account_id),
            amount=amount,
            key=full_key,
            payload_hash=digest,
        )
        [w] = ledger.write(session, [posting], now)
        return Receipt(w.id, merchant.name, amount, w.debit_balance or 0, now)

    def replay() -> Receipt | None:
        first = ledger.find(session, full_key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        merchant = _merchant(session, merchant_id)
        return Receipt(
            first.id, merchant.name, first.amount, first.debit_balance or 0, first.created_at, True
        )

    return ledger.run(session, work, replay)


def refund(
    session: Session,
    merchant_id: int,
    spend_id: int,
    points: object,
    *,
    key: str,
    now: datetime | None = None,
) -> RefundResult:
    """Give back up to what a spend took, within the municipality's refund window."""
    amount = check_amount(points, "points")
    full_key = f"refund:{merchant_id}:{idempotency_key(key)}"
    digest = payload_hash({"op": "refund", "spend": spend_id, "points": amount})
    now = utc_now(now)
    alone = refund_alone(session, merchant_id, spend_id, amount, full_key, digest, now)
    if alone is not None:  # PostgreSQL: one call, its own transaction (spend_pg)
        return RefundResult(alone.transfer_id, spend_id, amount, alone.refundable_left, now)

    def work() -> RefundResult:
        merchant = _merchant(session, merchant_id)
        original = session.get(Transfer, spend_id)
        # Another merchant's payment is "not found", not "forbidden": no probing.
        if (
            original is None
            or original.kind != TransferKind.SPEND
            or original.credit_account_id != merchant.account_id
        ):
            raise NotFound(Code.UNKNOWN_TRANSFER)
        muni = session.get(Municipality, merchant.municipality_id)
        assert muni is not None  # noqa: S101  (a foreign key)
        if now > original.created_at + timedelta(days=window.days_for(muni)):
            raise Refused(Code.REFUND_WINDOW_CLOSED)
        citizen = session.get(Account, original.debit_account_id)
        assert citizen is not None  # noqa: S101
        if citizen.kind != AccountKind.CITIZEN.value:
            # Compacted (webapp.points.retention): its window had closed, and a longer
            # window set since does not reopen it.
            raise Refused(Code.REFUND_WINDOW_CLOSED)
        posting = Posting(
            kind=TransferKind.REFUND,
            debit=Acct(AccountKind.MERCHANT, merchant.municipality_id, id=merchant.account_id),
            credit=Acct(
                AccountKind.CITIZEN, citizen.municipality_id, id=citizen.id, mykey_id=citizen.owner
            ),
            amount=amount,
            key=full_key,
            payload_hash=digest,
            reversal_of=original.id,
        )
        [w] = ledger.write(session, [posting], now)
        return RefundResult(
            w.id, spend_id, amount, original.amount - _refunded(session, spend_id), now
        )

    def replay() -> RefundResult | None:
        first = ledger.find(session, full_key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        original = session.get(Transfer, spend_id)
        assert original is not None  # noqa: S101
        left = original.amount - _refunded(session, spend_id)
        return RefundResult(first.id, spend_id, first.amount, left, first.created_at, True)

    return ledger.run(session, work, replay)


def _refunded(session: Session, spend_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(Transfer.reversal_of == spend_id)
    )
    return int(total or 0)


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment a merchant may still refund: amounts only, never who paid (rule 2)."""

    transfer_id: int
    points: int
    refunded: int
    created_at: datetime

    @property
    def refundable(self) -> int:
        """What is left to refund."""
        return self.points - self.refunded


def refundable_payments(
    session: Session, merchant_id: int, *, now: datetime | None = None, limit: int = 50
) -> list[Payment]:
    """The merchant's payments still inside the refund window, newest first (a range read)."""
    merchant = _merchant(session, merchant_id)
    muni = session.get(Municipality, merchant.municipality_id)
    assert muni is not None  # noqa: S101  (a foreign key)
    since = window.cutoff(muni, utc_now(now))
    spends = session.scalars(
        select(Transfer)
        .where(
            Transfer.credit_account_id == merchant.account_id,
            Transfer.kind == TransferKind.SPEND.value,
            Transfer.created_at >= since,
            # Compacted (its idempotency record expired): closed for good.
            Transfer.payload_hash != "",
        )
        .order_by(Transfer.id.desc())
        .limit(min(limit, 200))
    ).all()
    return [Payment(t.id, t.amount, _refunded(session, t.id), t.created_at) for t in spends]
