"""Read-only views: a citizen's own points, a merchant's settlement, a municipality's totals.

Merchants see totals per period, never people (no MyKey ID, no per-citizen line). Each
query is a range read on an index; nothing here scans a table per request.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Date, func, or_, select
from sqlalchemy.orm import Session, aliased

from .errors import Code, InvalidInput, NotFound
from .models import (
    Account,
    AccountKind,
    Cause,
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


def jst_date(moment: datetime, *, end: bool = False) -> str:
    """The day in Japan of an instant (`end`: of an exclusive end, i.e. the last day)."""
    if end:
        moment -= timedelta(microseconds=1)
    return moment.astimezone(JST).date().isoformat()


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
    # What the other side is, beyond its name: a merchant's category, a cause's kind
    # (cause or project), a partner's kind; "" for a program and the expired sink.
    detail: str = ""


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
        # Monthly totals of compacted history are listed by `citizen_months`.
        .where(mine, Transfer.kind != TransferKind.SUMMARY.value)
        .order_by(Transfer.id.desc())
        .limit(min(limit, 200))
    )
    if before_id is not None:
        query = query.where(Transfer.id < before_id)
    rows = session.execute(query).all()
    # Every counterparty's name in one query per kind, not one per account (N+1).
    names = _described(session, [counter for _, counter in rows])
    lines = []
    for t, counter in rows:
        credit = t.credit_account_id == account_id
        name, detail = names[counter.id]
        lines.append(
            StatementLine(
                t.id,
                t.kind,
                t.status,
                t.amount if credit else -t.amount,
                t.credit_balance if credit else t.debit_balance,
                name,
                t.created_at,
                detail,
            )
        )
    return lines


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """A month of a citizen's history past the refund window, kept as totals per
    category only (webapp.points.retention): no merchant, no day, no single payment."""

    month: str  # YYYY-MM, in Japan
    category: str  # a merchant category, "donation", "crowdfunding" or "grant"
    paid: int  # points that left the citizen (payments, donations, grants withdrawn)
    received: int  # points that came back or in (refunds, returns, grants)

    @property
    def points(self) -> int:
        """The month's net for the citizen (+ received, - paid)."""
        return self.received - self.paid


def citizen_months(session: Session, account_id: int, *, limit: int = 24) -> list[MonthTotal]:
    """The citizen's compacted months, newest first: a total per month and category."""
    pool = aliased(Account)
    rows = session.execute(
        select(Transfer.debit_account_id, Transfer.amount, pool.owner)
        .join(
            pool,
            pool.id
            == func.coalesce(
                func.nullif(Transfer.debit_account_id, account_id), Transfer.credit_account_id
            ),
        )
        .where(
            or_(Transfer.debit_account_id == account_id, Transfer.credit_account_id == account_id),
            Transfer.kind == TransferKind.SUMMARY.value,
        )
    ).all()
    totals: dict[tuple[str, str], list[int]] = {}
    for debit, amount, owner in rows:
        _, month, category = owner.split(":", 2)  # pool:YYYY-MM:category
        total = totals.setdefault((month, category), [0, 0])
        total[0 if debit == account_id else 1] += int(amount)
    ordered = sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1]), reverse=True)
    return [MonthTotal(m, c, paid, got) for (m, c), (paid, got) in ordered][:limit]


def _described(session: Session, accounts: list[Account]) -> dict[int, tuple[str, str]]:
    """Each account's name and what it is (a merchant's category, a cause's kind, a
    partner's kind; "" for a program and the system accounts), by account id: at most one
    query per kind of counterparty, however many there are."""
    out: dict[int, tuple[str, str]] = {a.id: (a.kind, "") for a in accounts}
    of_kind: dict[str, set[int]] = {}
    for a in accounts:
        of_kind.setdefault(a.kind, set()).add(a.id)
    merchants = of_kind.get(AccountKind.MERCHANT.value, set())
    if merchants:
        for m in session.scalars(select(Merchant).where(Merchant.account_id.in_(merchants))):
            out[m.account_id] = (m.name, m.category)
            merchants.discard(m.account_id)
    if merchants:  # the rest are causes and projects (their accounts are merchant-kind)
        for c in session.scalars(select(Cause).where(Cause.account_id.in_(merchants))):
            out[c.account_id] = (c.name, c.kind)
    program_accounts = of_kind.get(AccountKind.PROGRAM.value)
    if program_accounts:
        for p in session.scalars(select(Program).where(Program.account_id.in_(program_accounts))):
            out[p.account_id] = (p.name, "")
    partner_ids = {int(a.owner): a.id for a in accounts if a.kind == AccountKind.PARTNER.value}
    if partner_ids:
        for partner in session.scalars(select(Partner).where(Partner.id.in_(partner_ids))):
            out[partner_ids[partner.id]] = (partner.name, partner.kind)
    return out


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
    # Two grouped reads (payments, refunds) for the whole period, not two per day: one
    # range of the (account, created_at) index each (docs/scale.md).
    lo, hi = _jst(start), min(_jst(end), cutoff)
    paid = _daily(
        session, Transfer.credit_account_id, merchant.account_id, TransferKind.SPEND, lo, hi
    )
    refunded = _daily(
        session, Transfer.debit_account_id, merchant.account_id, TransferKind.REFUND, lo, hi
    )
    days = []
    day = start
    while day < end:
        count, gross = paid.get(day, (0, 0))
        refunds = refunded.get(day, (0, 0))[1]
        days.append((day, count, gross, refunds, gross - refunds))
        day += timedelta(days=1)
    return Settlement(merchant.code, start, end, cutoff, cutoff <= now - SETTLEMENT_MARGIN, days)


def _jst(day: date) -> datetime:
    return datetime.combine(day, time(), JST)


def _jst_day(session: Session) -> Any:
    """The Japanese calendar day of a transfer, as SQL (UTC+9, no daylight saving)."""
    if session.get_bind().dialect.name == "sqlite":  # naive UTC text (models.UtcDateTime)
        return func.date(Transfer.created_at, "+9 hours", type_=Date())
    return func.date(func.timezone("Asia/Tokyo", Transfer.created_at), type_=Date())


def _daily(
    session: Session, side: object, account_id: int, kind: TransferKind, lo: datetime, hi: datetime
) -> dict[date, tuple[int, int]]:
    """(count, points) per JST day of posted `kind` transfers on `side` in [lo, hi)."""
    if hi <= lo:
        return {}
    day = _jst_day(session)
    rows = session.execute(
        select(day, func.count(), func.coalesce(func.sum(Transfer.amount), 0))
        .where(
            side == account_id,  # type: ignore[arg-type]
            Transfer.kind == kind.value,
            Transfer.status == TransferStatus.POSTED.value,
            Transfer.created_at >= lo,
            Transfer.created_at < hi,
        )
        .group_by(day)
    ).all()
    return {d: (int(n), int(points)) for d, n, points in rows}


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
    owed_to_causes: int = 0  # points given to causes and projects, less what was returned


SYSTEM_KINDS = tuple(k.value for k in AccountKind if k is not AccountKind.CITIZEN)


def municipality_summary(session: Session, municipality_id: int) -> MunicipalitySummary:
    """Totals from the municipality's few system accounts, not from citizens' rows.

    Every transfer stays within one municipality and balances sum to zero there, so
    what citizens hold is minus the sum of all other accounts.
    """
    # The kinds by name (not "kind <> citizen"): a range of the (municipality, kind,
    # owner) key per kind, so the town's citizen rows are never read (docs/scale.md).
    accounts = session.scalars(
        select(Account).where(
            Account.municipality_id == municipality_id,
            Account.kind.in_(SYSTEM_KINDS),
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
                func.coalesce(func.sum(Transfer.amount), 0),  # the bonus paid, not asked
            )
            .join(Partner, Partner.id == Conversion.partner_id)
            .outerjoin(Transfer, Transfer.id == Conversion.bonus_transfer_id)
            .where(Conversion.municipality_id == municipality_id)
            .group_by(Partner.code)
            .order_by(Partner.code)
        ).all()
    ]
    return MunicipalitySummary(
        outstanding=-others,
        pending=sum(a.debits_pending for a in accounts),
        owed_to_merchants=sum(
            a.balance for a in by_kind[AccountKind.MERCHANT] if not a.owner.startswith("cause:")
        ),
        owed_to_causes=sum(
            a.balance for a in by_kind[AccountKind.MERCHANT] if a.owner.startswith("cause:")
        ),
        expired=sum(a.balance for a in by_kind[AccountKind.EXPIRED]),
        programs=programs,
        conversions=conversions,
    )
