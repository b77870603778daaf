"""`flask points compact`: no citizen–merchant history past the refund window.

A payment (spend, refund, donation, donation return) older than its municipality's
refund window is rewritten so that no row joins the citizen and the merchant:

- the payment itself keeps its merchant side (amount, time, kind, merchant's balance
  after) and its citizen side is re-pointed to an anonymous *pool* account of the
  municipality, the JST month and the merchant's category (owner ``pool:YYYY-MM:shop``);
  its idempotency record expires (key ``compacted:<id>``, no payload hash);
- the citizen keeps one *summary* transfer per pool and direction, the month's total
  (key ``summary:<pool>:<citizen>:out|in``), which the statement shows as a monthly total;
- the lot moves of the payment move to that summary (merged per lot), and a lot the
  payment opened (a returned donation's fresh lot) names the summary as its origin.

Every amount moved off the citizen's side lands on the summary in the same transaction,
so no balance changes (not even the pool's: it stays 0), every sum stays zero, lots and
their expiry are untouched, and the merchant's settlement reads the same rows as before.

Grants of a program that ended more than a window ago are rewritten the same way, pool
``pool:YYYY-MM:grant``, one (program, citizen) at a time with all its grants and revokes,
and the citizen's cap counters for the program go (a program that ended pays no more).

Batched: each batch is one short transaction of at most `batch` payments or
(program, citizen) units; it updates no account row, so it never waits on a citizen's
or a merchant's lock, and live transfers go on beside it. Idempotent and resumable: a
rewritten row no longer matches the scan, and a summary is found again by its key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..ledger.unit import backoff, begin, retryable
from ..models import (
    Account,
    AccountKind,
    Cause,
    CauseKind,
    CauseStatus,
    LotMove,
    Merchant,
    Municipality,
    PointLot,
    Program,
    ProgramCategory,
    ProgramCitizenTotal,
    Transfer,
    TransferKind,
    TransferStatus,
    table,
)
from ..reports import JST
from ..validation import utc_now
from . import window

BATCH = 500
MAX_ATTEMPTS = 8
GRANT_CATEGORY = "grant"

T = table(Transfer)
A = table(Account)
MOVES = table(LotMove)
LOTS = table(PointLot)

# Payments the citizen makes (out) and the ones paid back to the citizen (in).
_OUT = (TransferKind.SPEND.value, TransferKind.DONATION.value)
_IN = (TransferKind.REFUND.value, TransferKind.DONATION_RETURN.value)
# A project's donations are needed until it is settled for good (a missed project that
# returns them reads them); a missed-and-returned project's, once returned in full.
_FINAL = (CauseStatus.MET.value, CauseStatus.MISSED_KEPT.value)


@dataclass
class Compacted:
    """What one run rewrote."""

    payments: int = 0  # spends, refunds, donations and returns moved to pools
    grants: int = 0  # grants and revokes moved to pools
    summaries: int = 0  # monthly summaries written or added to


def compact(session: Session, *, now: datetime | None = None, batch: int = BATCH) -> Compacted:
    """Rewrite everything past each municipality's window (see the module doc)."""
    now = utc_now(now)
    done = Compacted()
    munis = [
        (m.id, window.cutoff(m, now), m.compacted_until)
        for m in session.scalars(select(Municipality).order_by(Municipality.id))
    ]
    session.rollback()
    for muni_id, cut, until in munis:
        for account, category, waits in _payees(session, muni_id):
            # Everything before the last complete run's cut-off is done, except what
            # waits on a project's settlement: a project's history is read in full.
            since = None if waits else until
            for out in (True, False):
                after: _Key = None
                while True:
                    step = partial(
                        _payments, session, muni_id, account, category, out, since, cut, now,
                        after, batch,
                    )  # fmt: skip
                    n, after = _retry(session, step)
                    if n is None:
                        break
                    done.payments += n[0]
                    done.summaries += n[1]
        # Never beyond the real clock's cut-off: a run told a later `now` (a test, a
        # mistake) must not make the next real run skip what is written until then.
        real_cut = cut - max(now - utc_now(), timedelta(0))
        if until is None or until < real_cut:
            _retry(session, partial(_mark, session, muni_id, real_cut))
        for program_id in _ended_programs(session, muni_id, cut):
            grant_after = 0
            while True:
                step = partial(_grants, session, muni_id, program_id, cut, now, grant_after, batch)
                n, grant_after = _retry(session, step)
                if n is None:
                    break
                done.grants += n[0]
                done.summaries += n[1]
    return done


_Key = tuple[datetime, int] | None  # keyset of a payments scan: (created_at, id)
Step = tuple[tuple[int, int] | None, Any]


def _retry(session: Session, step: Callable[[], Step]) -> Step:
    """Run one batch as its own transaction, again when the database asks or another
    compaction took a key first (the batch is then redone from what is left)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            begin(session)
            result = step()
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            backoff(attempt)
        except Exception as exc:
            session.rollback()
            if not retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            backoff(attempt)
    raise RuntimeError("compaction: too many retries")


def _month(moment: datetime) -> str:
    return moment.astimezone(JST).strftime("%Y-%m")


def _month_start(month: str) -> datetime:
    year, mon = (int(x) for x in month.split("-"))
    return datetime.combine(datetime(year, mon, 1).date(), time(), JST)


class _Batch:
    """One batch's rewrites, applied together: a few set-based statements per batch
    rather than several per payment (the batch's row locks are held that much shorter)."""

    def __init__(self, conn: Connection, muni_id: int, now: datetime) -> None:
        self.conn, self.muni_id, self.now = conn, muni_id, now
        self.ids: dict[str, int] = {}
        # (transfer, citizen, pool, out, amount, month) to rewrite
        self.items: list[tuple[int, int, int, bool, int, str]] = []
        self.summaries: set[int] = set()

    def pool(self, month: str, category: str) -> int:
        """The pool of the municipality, month and category (made when first needed)."""
        owner = f"pool:{month}:{category}"
        if owner not in self.ids:
            where = and_(
                A.c.municipality_id == self.muni_id, A.c.kind == "pool", A.c.owner == owner
            )
            found = self.conn.scalar(select(A.c.id).where(where))
            if found is None:
                found = self.conn.scalar(
                    insert(A)
                    .values(
                        municipality_id=self.muni_id,
                        kind=AccountKind.POOL.value,
                        owner=owner,
                        balance=0,
                        debits_pending=0,
                        credits_pending=0,
                        created_at=self.now,
                    )
                    .returning(A.c.id)
                )
            self.ids[owner] = int(found)
        return self.ids[owner]

    def queue(
        self, transfer_id: int, citizen: int, pool: int, out: bool, amount: int, month: str
    ) -> None:
        """Rewrite this transfer's citizen side to `pool` (out: the citizen paid)."""
        self.items.append((transfer_id, citizen, pool, out, amount, month))

    def apply(self) -> int:
        """Rewire, add to the summaries, move the lots' references, merge the moves; the
        number of transfers rewritten (one rewritten meanwhile by another run is left)."""
        done = self._rewire()
        items = [i for i in self.items if i[0] in done]
        if not items:
            return 0
        summary = self._add(items)
        follow = [{"t": i[0], "s": summary[(i[2], i[1], i[3])]} for i in items]
        self.conn.execute(
            update(MOVES)
            .where(MOVES.c.transfer_id == bindparam("t"))
            .values(transfer_id=bindparam("s")),
            follow,
        )
        self.conn.execute(
            update(LOTS)
            .where(LOTS.c.transfer_id == bindparam("t"))
            .values(transfer_id=bindparam("s")),
            follow,
        )
        self._merge_moves()
        return len(items)

    def _rewire(self) -> set[int]:
        """Point the citizen's side at the pool and expire the idempotency record, one
        statement per pool and side; a transfer already compacted (empty payload hash)
        is not touched again."""
        groups: dict[tuple[int, bool], list[int]] = {}
        for tid, _who, pool, out, _amount, _month in self.items:
            groups.setdefault((pool, out), []).append(tid)
        done: set[int] = set()
        for (pool, out), ids in groups.items():
            side, balance = ("debit", "debit_balance") if out else ("credit", "credit_balance")
            values = {
                f"{side}_account_id": pool,
                balance: None,
                "idempotency_key": literal("compacted:") + cast(T.c.id, String),
                "payload_hash": "",
            }
            rows = self.conn.execute(
                update(T)
                .where(T.c.id.in_(ids), T.c.payload_hash != "")
                .values(**values)
                .returning(T.c.id)
            ).all()
            done.update(int(r[0]) for r in rows)
        return done

    def _add(
        self, items: list[tuple[int, int, int, bool, int, str]]
    ) -> dict[tuple[int, int, bool], int]:
        """Add the amounts to the citizens' summaries (made when first needed): the
        summary id of each (pool, citizen, out)."""
        totals: dict[tuple[int, int, bool], list[Any]] = {}
        for _tid, who, pool, out, amount, month in items:
            entry = totals.setdefault((pool, who, out), [0, month])
            entry[0] += amount

        def key(pool: int, who: int, out: bool) -> str:
            return f"summary:{pool}:{who}:{'out' if out else 'in'}"

        keys = {key(*k): k for k in totals}
        found = {
            keys[k]: int(i)
            for i, k in self.conn.execute(
                select(T.c.id, T.c.idempotency_key).where(T.c.idempotency_key.in_(list(keys)))
            )
        }
        if found:
            self.conn.execute(
                update(T)
                .where(T.c.id == bindparam("sid"))
                .values(amount=T.c.amount + bindparam("a")),
                [{"sid": found[k], "a": totals[k][0]} for k in found],
            )
        missing = [k for k in totals if k not in found]
        if missing:
            rows = self.conn.execute(
                insert(T).returning(T.c.id, T.c.idempotency_key, sort_by_parameter_order=True),
                [
                    {
                        "municipality_id": self.muni_id,
                        "kind": TransferKind.SUMMARY.value,
                        "status": TransferStatus.POSTED.value,
                        "debit_account_id": who if out else pool,
                        "credit_account_id": pool if out else who,
                        "amount": totals[(pool, who, out)][0],
                        "idempotency_key": key(pool, who, out),
                        "payload_hash": "",
                        "created_at": _month_start(totals[(pool, who, out)][1]),
                    }
                    for pool, who, out in missing
                ],
            ).all()
            found.update({keys[k]: int(i) for i, k in rows})
        self.summaries.update(found.values())
        return found

    def _merge_moves(self) -> None:
        """One move per lot and summary: the per-payment amounts and order go."""
        rows = self.conn.execute(
            select(MOVES.c.transfer_id, MOVES.c.lot_id, func.sum(MOVES.c.delta))
            .where(MOVES.c.transfer_id.in_(sorted(self.summaries)))
            .group_by(MOVES.c.transfer_id, MOVES.c.lot_id)
            .having(func.count() > 1)
        ).all()
        if not rows:
            return
        self.conn.execute(
            delete(MOVES).where(
                MOVES.c.transfer_id == bindparam("t"), MOVES.c.lot_id == bindparam("l")
            ),
            [{"t": t, "l": lot} for t, lot, _ in rows],
        )
        merged = [{"lot_id": lot, "transfer_id": t, "delta": int(d)} for t, lot, d in rows if d]
        if merged:
            self.conn.execute(insert(MOVES), merged)


def _payees(session: Session, muni_id: int) -> list[tuple[int, str, bool]]:
    """The municipality's merchant and cause accounts: (account, pool category, whether
    its payments may wait past the window: a project's donations until it is settled)."""
    out = [
        (acct, cat, False)
        for acct, cat in session.execute(
            select(Merchant.account_id, Merchant.category)
            .where(Merchant.municipality_id == muni_id)
            .order_by(Merchant.account_id)
        )
    ]
    for acct, kind in session.execute(
        select(Cause.account_id, Cause.kind)
        .where(Cause.municipality_id == muni_id)
        .order_by(Cause.account_id)
    ):
        project = kind == CauseKind.PROJECT.value
        out.append((acct, "crowdfunding" if project else "donation", project))
    session.rollback()
    return out


def _mark(session: Session, muni_id: int, cut: datetime) -> Step:
    """Record that every payment before `cut` is compacted (the next run starts there)."""
    muni = session.get(Municipality, muni_id)
    if muni is not None and (muni.compacted_until is None or muni.compacted_until < cut):
        muni.compacted_until = cut
    return None, None


def _payments(
    session: Session,
    muni_id: int,
    account: int,
    category: str,
    out: bool,
    since: datetime | None,
    cut: datetime,
    now: datetime,
    after: _Key,
    batch: int,
) -> Step:
    """One batch of one merchant's (or cause's) payments in [since, cut): paid to it
    (`out`: spends, donations) or paid back by it (refunds, returns), in time order.

    A range read on the transfer's merchant-side index (credit or debit account, time),
    so a daily run reads about a day of each merchant's payments."""
    conn = session.connection()
    citizen = A.alias("citizen")
    r = T.alias("r")
    returned = (
        select(func.coalesce(func.sum(r.c.amount), 0)).where(r.c.reversal_of == T.c.id).correlate(T)
    )
    cause = table(Cause)
    settled = or_(
        T.c.kind != TransferKind.DONATION.value,
        select(cause.c.id)
        .where(
            cause.c.account_id == T.c.credit_account_id,
            or_(
                cause.c.kind == CauseKind.CAUSE.value,
                cause.c.status.in_(_FINAL),
                and_(
                    cause.c.status == CauseStatus.MISSED_RETURNED.value,
                    returned.scalar_subquery() == T.c.amount,
                ),
            ),
        )
        .correlate(T)
        .exists(),
    )
    mine, theirs = (
        (T.c.credit_account_id, T.c.debit_account_id)
        if out
        else (T.c.debit_account_id, T.c.credit_account_id)
    )
    query = (
        select(T.c.id, T.c.amount, T.c.created_at, theirs)
        .join(citizen, citizen.c.id == theirs)
        .where(
            mine == account,
            T.c.created_at < cut,
            T.c.kind.in_(_OUT if out else _IN),
            T.c.status == TransferStatus.POSTED.value,
            citizen.c.kind == AccountKind.CITIZEN.value,
            settled,
        )
        .order_by(T.c.created_at, T.c.id)
        .limit(batch)
    )
    if since is not None:
        query = query.where(T.c.created_at >= since)
    if after is not None:
        at, last = after
        query = query.where(or_(T.c.created_at > at, and_(T.c.created_at == at, T.c.id > last)))
    rows = conn.execute(query).all()
    if not rows:
        return None, after
    work = _Batch(conn, muni_id, now)
    for tid, amount, created_at, who in rows:
        month = _month(created_at)
        work.queue(tid, who, work.pool(month, category), out, int(amount), month)
    moved = work.apply()
    return (moved, len(work.summaries)), (rows[-1][2], int(rows[-1][0]))


def _ended_programs(session: Session, muni_id: int, cut: datetime) -> list[int]:
    """Programs that ended more than a window ago (the partner bonus budget never ends:
    its payments are conversion bonuses, kept with the conversion)."""
    ids = list(
        session.scalars(
            select(Program.id).where(
                Program.municipality_id == muni_id,
                Program.category != ProgramCategory.PARTNER_BONUS.value,
                Program.ends_at.is_not(None),
                Program.ends_at < cut,
            )
        )
    )
    session.rollback()
    return ids


def _grants(
    session: Session,
    muni_id: int,
    program_id: int,
    cut: datetime,
    now: datetime,
    after: int,
    batch: int,
) -> Step:
    """One batch of a program's citizens (by account id from `after`): every grant and
    revoke of each moves to the month's grant pool, and the cap counters go."""
    conn = session.connection()
    program_account = conn.scalar(
        select(table(Program).c.account_id).where(table(Program).c.id == program_id)
    )
    citizen = A.alias("citizen")
    mine = or_(
        and_(T.c.kind == TransferKind.GRANT.value, T.c.credit_account_id == citizen.c.id),
        and_(T.c.kind == TransferKind.GRANT_REVOKE.value, T.c.debit_account_id == citizen.c.id),
    )
    people = [
        int(c)
        for c in conn.scalars(
            select(citizen.c.id)
            .join(
                T, or_(T.c.credit_account_id == citizen.c.id, T.c.debit_account_id == citizen.c.id)
            )
            .where(
                # On the program account's side (its indexes: grants debit it, revokes
                # credit it), not a scan of every transfer by program.
                or_(
                    T.c.debit_account_id == program_account,
                    T.c.credit_account_id == program_account,
                ),
                T.c.program_id == program_id,
                citizen.c.kind == AccountKind.CITIZEN.value,
                citizen.c.id > after,
                mine,
            )
            .group_by(citizen.c.id)
            .order_by(citizen.c.id)
            .limit(batch)
        )
    ]
    if not people:
        return None, after
    work = _Batch(conn, muni_id, now)
    for who in people:
        rows = conn.execute(
            select(T.c.id, T.c.kind, T.c.amount, T.c.created_at, T.c.status, T.c.pending_id)
            .where(
                T.c.program_id == program_id,
                or_(
                    and_(T.c.kind == TransferKind.GRANT.value, T.c.credit_account_id == who),
                    and_(T.c.kind == TransferKind.GRANT_REVOKE.value, T.c.debit_account_id == who),
                ),
            )
            .order_by(T.c.id)
        ).all()
        # All or nothing per citizen: the cap counters are dropped with the last of them.
        if any(
            r.status != TransferStatus.POSTED.value
            or r.pending_id is not None
            or r.created_at >= cut
            for r in rows
        ):
            continue
        for tid, kind, amount, created_at, _status, _pending in rows:
            month = _month(created_at)
            out = kind == TransferKind.GRANT_REVOKE.value
            work.queue(tid, who, work.pool(month, GRANT_CATEGORY), out, int(amount), month)
        conn.execute(
            delete(table(ProgramCitizenTotal)).where(
                table(ProgramCitizenTotal).c.program_id == program_id,
                table(ProgramCitizenTotal).c.account_id == who,
            )
        )
    moved = work.apply()
    return (moved, len(work.summaries)), people[-1]
