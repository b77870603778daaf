"""The expiry job: what is left of expired lots moves to the expired sink, by transfers.

Lots are never deleted: an expiry is a transfer citizen -> expired sink whose lot moves
empty the expired lots. Its idempotency key names the lots and amounts it empties, so a
job killed mid-way and run again neither doubles nor loses an expiry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ledger
from .admin import system_account
from .errors import Code, Conflict
from .ledger import Acct, Posting
from .models import Account, AccountKind, PointLot, TransferKind
from .validation import utc_now


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    """What one run of the job did."""

    accounts: int
    points: int


def expire_account(session: Session, account_id: int, now: datetime) -> int:
    """Expire one citizen's lots that are due at `now`; returns the points expired."""

    def scan() -> tuple[list[tuple[int, int]], Account | None]:
        lots = session.execute(
            select(PointLot.id, PointLot.remaining)
            .where(
                PointLot.account_id == account_id,
                PointLot.remaining > 0,
                PointLot.expires_at <= now,
            )
            .order_by(PointLot.id)
        ).all()
        return [(int(i), int(r)) for i, r in lots], session.get(Account, account_id)

    lots, account = ledger.read(session, scan)
    if not lots or account is None:
        return 0
    amount = sum(int(r) for _, r in lots)
    state = ",".join(f"{i}:{r}" for i, r in lots).encode()
    key = f"expiry:{account_id}:{hashlib.sha256(state).hexdigest()[:40]}"

    def work() -> int:
        sink = system_account(session, account.municipality_id, AccountKind.EXPIRED)
        posting = Posting(
            kind=TransferKind.EXPIRY,
            debit=Acct(
                AccountKind.CITIZEN, account.municipality_id, id=account.id, mykey_id=account.owner
            ),
            credit=Acct(AccountKind.EXPIRED, account.municipality_id, id=sink.id),
            amount=amount,
            key=key,
            payload_hash=hashlib.sha256(state).hexdigest(),
        )
        ledger.write(session, [posting], now)
        return amount

    def replay() -> int | None:
        return 0 if ledger.find(session, key) is not None else None

    try:
        return ledger.run(session, work, replay)
    except Conflict as exc:
        if exc.code is not Code.BUSY:
            raise
        return 0  # the lots changed under us (a refund, a spend): the next run sees them


def _due(session: Session, now: datetime, after: int, batch: int) -> list[int]:
    return list(
        session.scalars(
            select(PointLot.account_id)
            .where(
                PointLot.remaining > 0,
                PointLot.expires_at <= now,
                PointLot.account_id > after,
            )
            .distinct()
            .order_by(PointLot.account_id)
            .limit(batch)
        )
    )


def expire_due(session: Session, *, now: datetime | None = None, batch: int = 500) -> ExpiryRun:
    """Expire every due lot, one citizen per transaction, in batches of `batch` citizens."""
    when = utc_now(now)
    accounts = points = last = 0
    while True:
        due = ledger.read(session, partial(_due, session, when, last, batch))
        if not due:
            return ExpiryRun(accounts, points)
        for account_id in due:
            expired = expire_account(session, account_id, when)
            if expired:
                accounts += 1
                points += expired
        last = due[-1]
