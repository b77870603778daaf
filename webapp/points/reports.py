"""Read-only views: a citizen's own points, a merchant's settlement, a municipality's totals.

Merchants see totals per period, never people (no MyKey ID, no per-citizen line). Each
query is a range read on an index; nothing here scans a table per request.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from .errors import Code, InvalidInput, NotFound
from .models import (
    Account,
    AccountKind,
    Conversion,
    Merchant,
    Municipality,
    Partner,
    PointLot,
    Program,
    Transfer,
    TransferKind,
    TransferStatus,
)
from .validation import utc_now

JST = timezone(timedelta(hours=9), "JST")
# A cut-off is final once no transaction begun before it can still commit: our
# transactions are short, and this margin is far above any of them.
SETTLEMENT_MARGIN = timedelta(minutes=5)
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True, slots=True)
class LotView:
    """A lot as its holder sees it."""

    amount: int
    remaining: int
    expires_at: datetime
    expired: bool


@dataclass(frozen=True, slots=True)
class CitizenBalance:
    """A citizen's points in one municipality."""

    municipality_code: str
    municipality_name: str
    account_id: int
    balance: int  # posted
    spendable: int  # posted minus lots already expired but not yet swept
    pending: int  # held conversions, not spendable yet
    lots: list[LotView]


def citizen_balances(
    session: Session, mykey_id: str, now: datetime | None = None
) -> list[CitizenBalance]:
    """Balances per municipality, with live lots in spending order (有効期限の近い順)."""
    now = utc_now(now)
    accounts = session.execute(
        select(Account, Municipality)
        .join(Municipality, Municipality.id == Account.municipality_id)
        .where(Account.owner == mykey_id, Account.kind == AccountKind.CITIZEN.value)
        .order_by(Municipality.code)
    ).all()
    out = []
    for account, muni in accounts:
        lots = [
            LotView(lot.amount, lot.remaining, lot.expires_at, lot.expires_at <= now)
            for lot in session.scalars(
                select(PointLot)
                .where(PointLot.account_id == account.id, PointLot.remaining > 0)
                .order_by(PointLot.expires_at, PointLot.id)
            )
        ]
        expired = sum(lot.remaining for lot in lots if lot.expired)
        out.append(
            CitizenBalance(
                muni.code,
                muni.name,
                account.id,
                account.balance,
                account.balance - expired,
                account.credits_pending,
                lots,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One of a citizen's own transfers: signed points and the other side's name."""

    transfer_id: int
    kind: str
    status: str
    points: int  # + credit to the citizen, - debit
    balance: int | None
    counterparty: str
    created_at: datetime


def citizen_transfers(
    session: Session, account_id: int, *, before_id: int | None = None, limit: int = 50
) -> list[StatementLine]:
    """The citizen's own transfers, newest first, `limit` per page (keyset by id)."""
    other = aliased(Account)
    mine = or_(Transfer.debit_account_id == account_id, Transfer.credit_account_id == account_id)
    query = (
        select(Transfer, other)
        .join(
            other,
            other.id
            == func.coalesce(
                func.nullif(Transfer.debit_account_id, account_id), Transfer.credit_account_id
            ),
        )
        .where(mine)
        .order_by(Transfer.id.desc())
        .limit(min(limit, 200))
    )
    if before_id is not None:
        query = query.where(Transfer.id < before_id)
    lines = []
    names: dict[int, str] = {}
    for t, counter in session.execute(query).all():
        credit = t.credit_account_id == account_id
        if counter.id not in names:
            names[counter.id] = _name(session, counter)
        lines.append(
            StatementLine(
                t.id,
                t.kind,
                t.status,
                t.amount if credit else -t.amount,
                t.credit_balance if credit else t.debit_balance,
                names[counter.id],
                t.created_at,
            )
        )
    return lines


def _name(session: Session, account: Account) -> str:
    if account.kind == AccountKind.MERCHANT.value:
        merchant = session.scalar(select(Merchant).where(Merchant.account_id == account.id))
        return merchant.name if merchant else account.kind
    if account.kind == AccountKind.PROGRAM.value:
        program = session.scalar(select(Program).where(Program.account_id == account.id))
        return program.name if program else account.kind
    if account.kind == AccountKind.PARTNER.value:
        partner = session.get(Partner, int(account.owner))
        return partner.name if partner else account.kind
    return account.kind


@dataclass(frozen=True, slots=True)
class Settlement:
    """A merchant's totals for [start, end) as recorded up to `cutoff` (精算)."""

    merchant_code: str
    start: date
    end: date
    cutoff: datetime
    final: bool  # False while the cut-off is too recent to be reproducible
    days: list[tuple[date, int, int, int, int]]  # day, count, gross, refunds, net

    @property
    def count(self) -> int:
        """Number of payments in the period."""
        return sum(d[1] for d in self.days)

    @property
    def gross(self) -> int:
        """Points paid to the merchant."""
        return sum(d[2] for d in self.days)

    @property
    def refunds(self) -> int:
        """Points refunded by the merchant."""
        return sum(d[3] for d in self.days)

    @property
    def net(self) -> int:
        """Gross minus refunds: what the municipality owes for the period."""
        return self.gross - self.refunds


def settlement(
    session: Session,
    merchant_id: int,
    start: date,
    end: date,
    *,
    cutoff: datetime | None = None,
    now: datetime | None = None,
) -> Settlement:
    """Totals per JST day for [start, end), counting only what was recorded before `cutoff`.

    With the same cut-off the report is the same every time: transfers are immutable and
    a later refund of a payment in the period shows in the period it happened in.
    """
    now = utc_now(now)
    if not start < end or (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput(
            Code.INVALID_INPUT, f"period: start < end, at most {MAX_PERIOD_DAYS} days"
        )
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(Code.UNKNOWN_MERCHANT)
    cutoff = utc_now(cutoff) if cutoff is not None else min(now, _jst(end))
    days = []
    day = start
    while day < end:
        lo, hi = _jst(day), min(_jst(day + timedelta(days=1)), cutoff)
        count, gross = _sum(
            session, Transfer.credit_account_id, merchant.account_id, TransferKind.SPEND, lo, hi
        )
        _, refunds = _sum(
            session, Transfer.debit_account_id, merchant.account_id, TransferKind.REFUND, lo, hi
        )
        days.append((day, count, gross, refunds, gross - refunds))
        day += timedelta(days=1)
    return Settlement(merchant.code, start, end, cutoff, cutoff <= now - SETTLEMENT_MARGIN, days)


def _jst(day: date) -> datetime:
    return datetime.combine(day, time(), JST)


def _sum(
    session: Session, side: object, account_id: int, kind: TransferKind, lo: datetime, hi: datetime
) -> tuple[int, int]:
    if hi <= lo:
        return 0, 0
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(Transfer.amount), 0)).where(
            side == account_id,  # type: ignore[arg-type]
            Transfer.kind == kind.value,
            Transfer.status == TransferStatus.POSTED.value,
            Transfer.created_at >= lo,
            Transfer.created_at < hi,
        )
    ).one()
    return int(row[0]), int(row[1])


def settlement_csv(report: Settlement) -> str:
    """The settlement as CSV (UTF-8): one line per day and a total line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["merchant", "date", "count", "gross", "refunds", "net", "cutoff"])
    cut = report.cutoff.astimezone(JST).isoformat()
    for day, count, gross, refunds, net in report.days:
        writer.writerow([report.merchant_code, day.isoformat(), count, gross, refunds, net, cut])
    writer.writerow(
        [report.merchant_code, "total", report.count, report.gross, report.refunds, report.net, cut]
    )
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class MunicipalitySummary:
    """What a municipality sees: points out, budgets used, partner conversions."""

    outstanding: int  # posted points in citizens' hands
    pending: int  # held conversions not yet posted
    owed_to_merchants: int
    expired: int
    programs: list[tuple[str, int, int, int]]  # code, funded, used, left
    conversions: list[tuple[str, int, int, int, int]]  # partner, count, partner pts, base, bonus


def municipality_summary(session: Session, municipality_id: int) -> MunicipalitySummary:
    """Totals from the municipality's few system accounts, not from citizens' rows.

    Every transfer stays within one municipality and balances sum to zero there, so
    what citizens hold is minus the sum of all other accounts.
    """
    accounts = session.scalars(
        select(Account).where(
            Account.municipality_id == municipality_id,
            Account.kind != AccountKind.CITIZEN.value,
        )
    ).all()
    others = sum(a.balance for a in accounts)
    by_kind = {k: [a for a in accounts if a.kind == k.value] for k in AccountKind}
    programs = []
    for program in session.scalars(
        select(Program).where(Program.municipality_id == municipality_id).order_by(Program.code)
    ):
        funded = session.scalar(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.credit_account_id == program.account_id,
                Transfer.kind == TransferKind.FUNDING.value,
            )
        )
        acct = next(a for a in accounts if a.id == program.account_id)
        left = acct.balance - acct.debits_pending
        programs.append((program.code, int(funded or 0), int(funded or 0) - left, left))
    conversions = [
        (code, int(n), int(pp), int(base), int(bonus))
        for code, n, pp, base, bonus in session.execute(
            select(
                Partner.code,
                func.count(),
                func.sum(Conversion.partner_points),
                func.sum(Conversion.base_points),
                func.sum(Conversion.bonus_points),
            )
            .join(Partner, Partner.id == Conversion.partner_id)
            .where(Conversion.municipality_id == municipality_id)
            .group_by(Partner.code)
            .order_by(Partner.code)
        ).all()
    ]
    return MunicipalitySummary(
        outstanding=-others,
        pending=sum(a.debits_pending for a in accounts),
        owed_to_merchants=sum(a.balance for a in by_kind[AccountKind.MERCHANT]),
        expired=sum(a.balance for a in by_kind[AccountKind.EXPIRED]),
        programs=programs,
        conversions=conversions,
    )
