"""Checkouts of online shops (ネットでの地域産品購入): made by the shop's API, paid by the
citizen's card and PIN at home, cancelled, expired, refunded in part or in full.

Every write that a shop must hear of adds its webhook to the outbox (webhooks.py) in
the same transaction, so an event is sent if and only if its change committed.

Payment: one spend in the ledger under the key `checkout:<id>` (the ledger's spend
invariants, FIFO lots, idempotent), and in the same transaction the checkout moves
from open to paid by a conditional UPDATE (still open, not expired): a second payment,
by the same citizen (a retried request: the first receipt again) or by anyone else
(refused: already paid), never pays twice. The checkout row is locked first, then the
ledger's rows in the ledger's order, the same for a refund, so the two never wait on
each other in a cycle.

Refunds: each under the shop's refund reference (`checkout:<id>:<reference>`), a
reversal of the spend; the checkout row's lock makes refunds of one checkout run one
after the other, and the ledger refuses a reversal beyond the original in any case.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import ledger
from ..admin import accepted_categories
from ..errors import Code, Conflict, NotFound, Refused
from ..ledger import Acct, Posting
from ..ledger.unit import begin
from ..models import (
    Account,
    AccountKind,
    Merchant,
    MerchantCategory,
    Municipality,
    Transfer,
    TransferKind,
    table,
)
from ..retention import window as refund_window
from ..validation import amount as check_amount
from ..validation import mykey_id as check_mykey
from ..validation import payload_hash, reference, utc_now
from .models import Checkout, CheckoutStatus, DeliveryStatus, Shop, WebhookDelivery
from .signing import check_url_on

DEFAULT_TTL = timedelta(minutes=15)
MAX_POINTS = 10_000_000  # one online order: the till's bound


@dataclass(frozen=True, slots=True)
class CheckoutView:
    """A checkout as the shop and the checkout page see it: never who paid."""

    id: str
    merchant_id: int
    merchant: str
    reference: str
    amount: int
    status: str  # open | paid | cancelled | expired
    refunded: int
    return_url: str
    created_at: datetime
    expires_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RefundView:
    """One refund of a checkout: its reference and amount, and what is left to refund."""

    checkout_id: str
    reference: str
    amount: int
    refunded: int
    refundable: int
    created_at: datetime
    replayed: bool = False


def status_of(c: Checkout, now: datetime) -> str:
    """The checkout's status now (an open one past its expiry is expired)."""
    if c.status == CheckoutStatus.OPEN and now >= c.expires_at:
        return "expired"
    return c.status


def _refunded(session: Session, spend_id: int | None) -> int:
    if spend_id is None:
        return 0
    total = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(Transfer.reversal_of == spend_id)
    )
    return int(total or 0)


def view(
    session: Session, c: Checkout, now: datetime | None = None, *, replayed: bool = False
) -> CheckoutView:
    """The shop's and the page's view of a checkout."""
    merchant = session.get(Merchant, c.merchant_id)
    assert merchant is not None  # noqa: S101  (a foreign key)
    return CheckoutView(
        c.id,
        c.merchant_id,
        merchant.name,
        c.reference,
        c.amount,
        status_of(c, utc_now(now)),
        _refunded(session, c.spend_transfer_id),
        c.return_url,
        c.created_at,
        c.expires_at,
        replayed,
    )


def shop_of(session: Session, merchant: Merchant) -> Shop:
    """The merchant's shop settings, or NOT_A_SHOP (a till merchant, or not set up)."""
    shop = session.get(Shop, merchant.id)
    if shop is None or merchant.category != MerchantCategory.ONLINE_GOODS.value:
        raise Refused(Code.NOT_A_SHOP)
    return shop


def create(
    session: Session,
    merchant: Merchant,
    *,
    amount: object,
    order: object,
    return_url: object,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> CheckoutView:
    """A new open checkout; the same order reference with the same body answers the
    first checkout again (replayed), with another body IDEMPOTENCY_CONFLICT (409)."""
    now = utc_now(now)
    points = check_amount(amount, "amount", MAX_POINTS)
    ref = reference(order, "reference")
    shop = shop_of(session, merchant)
    url = check_url_on(return_url, list(shop.origins or []))
    digest = payload_hash({"amount": points, "reference": ref, "return_url": url})
    for _ in range(2):
        first = session.scalar(
            select(Checkout).where(Checkout.merchant_id == merchant.id, Checkout.reference == ref)
        )
        if first is not None:
            if first.payload_hash != digest:
                raise Conflict(Code.IDEMPOTENCY_CONFLICT, "reference used with another body")
            return view(session, first, now, replayed=True)
        row = Checkout(
            id=f"co_{secrets.token_urlsafe(16)}",
            merchant_id=merchant.id,
            reference=ref,
            amount=points,
            return_url=url,
            payload_hash=digest,
            status=CheckoutStatus.OPEN.value,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same reference, made by a parallel request
            session.rollback()
            continue
        return view(session, row, now)
    raise Conflict(Code.IDEMPOTENCY_CONFLICT)  # pragma: no cover


def get_for_merchant(session: Session, merchant: Merchant, checkout_id: str) -> Checkout:
    """One of the shop's checkouts (another shop's is not found: no probing)."""
    c = session.get(Checkout, checkout_id) if isinstance(checkout_id, str) else None
    if c is None or c.merchant_id != merchant.id:
        raise NotFound(Code.UNKNOWN_CHECKOUT)
    return c


def get(session: Session, checkout_id: object) -> Checkout:
    """A checkout by its id (the page's address), or UNKNOWN_CHECKOUT."""
    c = session.get(Checkout, checkout_id) if isinstance(checkout_id, str) else None
    if c is None:
        raise NotFound(Code.UNKNOWN_CHECKOUT)
    return c


def _locked(session: Session, checkout_id: str) -> Checkout:
    """The checkout row, locked for this transaction (PostgreSQL; SQLite has one writer)."""
    c = session.scalar(
        select(Checkout)
        .where(Checkout.id == checkout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if c is None:
        raise NotFound(Code.UNKNOWN_CHECKOUT)
    return c


def _closed(c: Checkout, now: datetime) -> Code | None:
    """Why an open-only step is refused now (None: it is open)."""
    status = status_of(c, now)
    return {
        "expired": Code.CHECKOUT_EXPIRED,
        "cancelled": Code.CHECKOUT_CANCELLED,
        "paid": Code.CHECKOUT_PAID,
    }.get(status)


def enqueue(
    session: Session, c: Checkout, event: str, now: datetime, **extra: object
) -> str | None:
    """Add the shop's webhook for `event` to the outbox, in the caller's transaction
    (nothing when the shop has no webhook URL). Returns the event id."""
    shop = session.get(Shop, c.merchant_id)
    if shop is None or not shop.webhook_url:
        return None
    event_id = f"evt_{uuid.uuid4().hex}"
    body = {
        "id": event_id,
        "type": event,
        "created": int(now.timestamp()),
        "data": {
            "checkout": c.id,
            "reference": c.reference,
            "status": c.status,
            "amount": c.amount,
            **extra,
        },
    }
    session.execute(
        insert(table(WebhookDelivery)).values(
            event_id=event_id,
            merchant_id=c.merchant_id,
            checkout_id=c.id,
            event=event,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return event_id


def _spend_key(c: Checkout) -> str:
    return f"spend:{c.merchant_id}:checkout:{c.id}"


def pay(
    session: Session, checkout_id: str, citizen: str, *, now: datetime | None = None
) -> CheckoutView:
    """Pay the open checkout from the citizen's points (FIFO lots); the same citizen
    again answers the first payment (replayed); anyone else is refused CHECKOUT_PAID."""
    citizen = check_mykey(citizen)
    now = utc_now(now)
    first_look = get(session, checkout_id)
    key = _spend_key(first_look)
    digest = payload_hash(
        {"op": "spend", "merchant": first_look.merchant_id, "mykey_id": citizen,
         "points": first_look.amount}
    )  # fmt: skip
    session.rollback()

    def work() -> CheckoutView:
        c = _locked(session, checkout_id)
        closed = _closed(c, now)
        if closed is not None:
            raise (Conflict if closed is Code.CHECKOUT_PAID else Refused)(closed)
        merchant = session.get(Merchant, c.merchant_id)
        assert merchant is not None  # noqa: S101
        if not merchant.active:
            raise Refused(Code.INACTIVE)
        if merchant.category not in accepted_categories(session, merchant.municipality_id):
            raise Refused(Code.NOT_ACCEPTED, f"category {merchant.category}")
        posting = Posting(
            kind=TransferKind.SPEND,
            debit=Acct(AccountKind.CITIZEN, merchant.municipality_id, mykey_id=citizen),
            credit=Acct(AccountKind.MERCHANT, merchant.municipality_id, id=merchant.account_id),
            amount=c.amount,
            key=key,
            payload_hash=digest,
        )
        [w] = ledger.write(session, [posting], now)
        session.execute(
            update(table(Checkout))
            .where(Checkout.id == c.id)
            .values(status=CheckoutStatus.PAID.value, spend_transfer_id=w.id, resolved_at=now)
        )
        c.status, c.spend_transfer_id = CheckoutStatus.PAID.value, w.id
        enqueue(session, c, "checkout.paid", now, refunded=0)
        session.flush()
        return view(session, c, now)

    def replay() -> CheckoutView | None:
        first = ledger.find(session, key)
        if first is None:
            return None
        if first.payload_hash != digest:
            raise Conflict(Code.CHECKOUT_PAID)  # paid, by someone else
        return view(session, get(session, checkout_id), now, replayed=True)

    return ledger.run(session, work, replay)


def cancel(session: Session, checkout_id: str, *, now: datetime | None = None) -> CheckoutView:
    """The citizen cancels an open checkout (again: the same answer); a paid one is 409."""
    now = utc_now(now)
    session.rollback()
    begin(session)  # SQLite: take the write lock before reading (one writer)
    c = _locked(session, checkout_id)
    if c.status == CheckoutStatus.CANCELLED:
        session.rollback()
        return view(session, get(session, checkout_id), now, replayed=True)
    if c.status == CheckoutStatus.PAID:
        session.rollback()
        raise Conflict(Code.CHECKOUT_PAID)
    if status_of(c, now) == "expired":
        session.rollback()
        raise Refused(Code.CHECKOUT_EXPIRED)
    c.status, c.resolved_at = CheckoutStatus.CANCELLED.value, now
    enqueue(session, c, "checkout.cancelled", now)
    session.commit()
    return view(session, c, now)


def refund(
    session: Session,
    merchant: Merchant,
    checkout_id: str,
    *,
    amount: object,
    ref: object,
    now: datetime | None = None,
) -> RefundView:
    """Give back part or all of a paid checkout, once per refund reference; never more
    than was paid in total (parallel refunds included), within the refund window."""
    points = check_amount(amount, "amount", MAX_POINTS)
    refund_ref = reference(ref, "reference")
    now = utc_now(now)
    c0 = get_for_merchant(session, merchant, checkout_id)
    key = f"refund:{merchant.id}:checkout:{c0.id}:{refund_ref}"
    session.rollback()

    def work() -> RefundView:
        c = _locked(session, checkout_id)
        if c.status != CheckoutStatus.PAID or c.spend_transfer_id is None:
            raise Refused(Code.CHECKOUT_NOT_PAID)
        spend = session.get(Transfer, c.spend_transfer_id)
        assert spend is not None  # noqa: S101  (a foreign key)
        digest = payload_hash({"op": "refund", "spend": spend.id, "points": points})
        muni = session.get(Municipality, merchant.municipality_id)
        assert muni is not None  # noqa: S101
        if now > spend.created_at + timedelta(days=refund_window.days_for(muni)):
            raise Refused(Code.REFUND_WINDOW_CLOSED)
        already = _refunded(session, spend.id)
        if already + points > spend.amount:
            raise Refused(Code.REFUND_EXCEEDS_SPENT, f"refundable: {spend.amount - already}")
        payer = session.get(Account, spend.debit_account_id)
        assert payer is not None  # noqa: S101
        posting = Posting(
            kind=TransferKind.REFUND,
            debit=Acct(AccountKind.MERCHANT, merchant.municipality_id, id=merchant.account_id),
            credit=Acct(
                AccountKind.CITIZEN, payer.municipality_id, id=payer.id, mykey_id=payer.owner
            ),
            amount=points,
            key=key,
            payload_hash=digest,
            reversal_of=spend.id,
        )
        ledger.write(session, [posting], now)
        total = already + points
        enqueue(
            session, c, "checkout.refunded", now,
            refunded=total, refund={"reference": refund_ref, "amount": points},
        )  # fmt: skip
        session.flush()
        return RefundView(c.id, refund_ref, points, total, spend.amount - total, now)

    def replay() -> RefundView | None:
        first = ledger.find(session, key)
        if first is None:
            return None
        ledger.check_replay(first, payload_hash(
            {"op": "refund", "spend": first.reversal_of, "points": points}
        ))  # fmt: skip
        spend = session.get(Transfer, first.reversal_of)
        assert spend is not None  # noqa: S101
        total = _refunded(session, spend.id)
        return RefundView(
            checkout_id, refund_ref, first.amount, total, spend.amount - total,
            first.created_at, True,
        )  # fmt: skip

    return ledger.run(session, work, replay)
