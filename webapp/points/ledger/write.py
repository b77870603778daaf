"""`write`: one batch of postings, applied in the one lock order (see the package doc)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ... import pgraw as pg
from ..models import AccountKind, TransferStatus
from .accounts import apply, defer
from .entries import (
    check_reversal,
    claim_hold,
    credit_citizen,
    insert_transfers,
    opens_lot,
    pending_order,
    side_effects,
)
from .postings import RANK, Acct, Effect, Posting, Written, effects_of

# session.info key: the kinds of the transfers written in the session's transaction, for
# the metrics (webapp/ops counts them once the transaction commits; a rollback drops them).
WRITTEN_KINDS = "ichimai.ledger.written_kinds"


def write(
    session: Session,
    postings: Sequence[Posting],
    now: datetime,
    on_written: Callable[[list[Written]], None] | None = None,
) -> list[Written]:
    """Apply `postings` atomically in the session's transaction (see the module doc).

    Raises Refused/InvalidInput/Conflict (roll back), or DuplicateKey when a key is taken.
    `on_written` runs after the transfers exist and before the shared rows are locked.
    """
    written = _write(session, postings, now, on_written)
    session.info.setdefault(WRITTEN_KINDS, []).extend(str(w.kind) for w in written)
    return written


def _write(
    session: Session,
    postings: Sequence[Posting],
    now: datetime,
    on_written: Callable[[list[Written]], None] | None,
) -> list[Written]:
    if not postings:
        return []
    conn = session.connection()
    effects = effects_of(postings)
    raw = pg.connection(conn)
    if raw is not None and len(postings) == 1:
        done = _credit_citizen(session, raw, postings[0], effects, now, on_written)
        if done is not None:
            return [done]
    order = sorted(effects, key=Acct.lock_key)
    first = [a for a in order if RANK[a.kind][0] == 0]
    last = [a for a in order if RANK[a.kind][0] == 1]
    # Claims come before any account lock, in pending id order: the hold row is where two
    # resolutions of one pending transfer meet, and the loser stops before touching money.
    for p in sorted((p for p in postings if p.pending_id is not None), key=pending_order):
        claim_hold(conn, p)
    for acct in first:
        effects[acct].row = apply(conn, acct, effects[acct], now)

    def acct_id(a: Acct) -> int:
        return a.id if a.id is not None else int(effects[a].row["id"])

    running = {a: int(effects[a].row["balance"]) - effects[a].balance for a in first}
    rows: list[dict[str, Any]] = []
    for p in postings:
        balances: list[int | None] = []
        for acct, sign in ((p.debit, -1), (p.credit, 1)):
            if acct in running and p.status is TransferStatus.POSTED:
                running[acct] += sign * p.amount
            balances.append(running.get(acct))
        rows.append(_row(p, acct_id(p.debit), acct_id(p.credit), *balances, now))
    one = postings[0] if len(postings) == 1 else None
    with_lot = (
        one.lot_expires_at
        if one is not None and conn.dialect.name == "postgresql" and opens_lot(one)
        else None
    )
    ids = insert_transfers(conn, rows, with_lot)
    written = [
        Written(
            id=i,
            kind=r["kind"],
            status=r["status"],
            amount=r["amount"],
            debit_account_id=r["debit_account_id"],
            credit_account_id=r["credit_account_id"],
            debit_balance=r["debit_balance"],
            credit_balance=r["credit_balance"],
            created_at=now,
        )
        for i, r in zip(ids, rows, strict=True)
    ]
    for p, w in zip(postings, written, strict=True):
        side_effects(conn, p, w, now, lot_written=with_lot is not None)
    if on_written is not None:
        on_written(written)
    if conn.dialect.name == "postgresql":
        defer(session, {a: effects[a] for a in last})
    else:
        for acct in last:
            effects[acct].row = apply(conn, acct, effects[acct], now)
    for p, w in zip(postings, written, strict=True):
        if p.reversal_of is not None:
            check_reversal(conn, p, w)
    return written


def _row(
    p: Posting,
    debit_id: int,
    credit_id: int | None,
    debit_balance: int | None,
    credit_balance: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The transfer row of `p` (a column per key)."""
    return {
        "municipality_id": p.debit.municipality_id,
        "kind": p.kind.value,
        "status": p.status.value,
        "debit_account_id": debit_id,
        "credit_account_id": credit_id,
        "amount": p.amount,
        "idempotency_key": p.key,
        "payload_hash": p.payload_hash,
        "reversal_of": p.reversal_of,
        "pending_id": p.pending_id,
        "program_id": p.program_id,
        "hold_until": p.hold_until,
        "debit_balance": debit_balance,
        "credit_balance": credit_balance,
        "created_at": now,
    }


def _credit_citizen(
    session: Session,
    raw: pg.Raw,
    p: Posting,
    effects: dict[Acct, Effect],
    now: datetime,
    on_written: Callable[[list[Written]], None] | None,
) -> Written | None:
    """PostgreSQL, one posting from a shared account to a citizen that opens a lot (a
    grant): the citizen's update, the transfer and the lot in one statement, the shared
    row deferred to the commit; the same rows, locks and order as the general path.
    None: not such a posting, or the statement changed nothing (a first credit to this
    citizen, or a refusal), and the general path runs instead."""
    if (
        p.pending_id is not None
        or p.credit.kind is not AccountKind.CITIZEN
        or p.debit.id is None
        or RANK[p.debit.kind][0] != 1
        or not opens_lot(p)
    ):
        return None
    assert p.lot_expires_at is not None  # noqa: S101  (opens_lot)
    e = effects[p.credit]
    effect = {"b": e.balance, "dp": e.debits_pending, "cp": e.credits_pending}
    got = credit_citizen(
        raw, _row(p, p.debit.id, None, None, None, now), effect, p.credit.mykey_id,
        p.lot_expires_at,
    )  # fmt: skip
    if got is None:
        return None
    transfer_id, account_id, balance = got
    w = Written(
        id=transfer_id,
        kind=p.kind.value,
        status=p.status.value,
        amount=p.amount,
        debit_account_id=p.debit.id,
        credit_account_id=account_id,
        debit_balance=None,
        credit_balance=balance,
        created_at=now,
    )
    side_effects(raw.conn, p, w, now, lot_written=True)
    if on_written is not None:
        on_written([w])
    defer(session, {p.debit: effects[p.debit]})
    return w
