"""What follows from written transfers: holds claimed and opened, lots consumed, created
and restored, per-citizen caps counted (webapp.points.ledger.caps), reversals checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.exc import IntegrityError

from ... import pgraw as pg
from ..errors import Code, Conflict, InvalidInput, Refused
from ..models import (
    AccountKind,
    LotMove,
    OpenHold,
    PointLot,
    Transfer,
    TransferKind,
    TransferStatus,
    table,
)
from . import caps
from .postings import DuplicateKey, Posting, Written

_LOT_PAGE = 64
_REVERSES = {
    TransferKind.REFUND: TransferKind.SPEND,
    TransferKind.GRANT_REVOKE: TransferKind.GRANT,
    TransferKind.DONATION_RETURN: TransferKind.DONATION,
}

# Statements built once: building and cache-keying a construct per call costs more CPU
# than sending it, and the client's CPU is what bounds throughput.
_INSERT_ONE = insert(table(Transfer)).returning(table(Transfer).c.id)
_INSERT_MANY = insert(table(Transfer)).returning(table(Transfer).c.id, sort_by_parameter_order=True)
_INSERT_HOLD = insert(table(OpenHold))
_INSERT_LOT = insert(table(PointLot))
_INSERT_MOVE = insert(table(LotMove))


_TRANSFER_COLUMNS = [c.name for c in table(Transfer).c if c.name != "id"]
# PostgreSQL: a posted credit to a citizen that opens a lot (a grant) writes the transfer
# and its lot in one statement, one round trip less. The lot references the transfer row
# inserted by the same statement (foreign keys are checked at its end).
_INSERT_WITH_LOT = text(  # column names from the model, values bound
    f"WITH t AS (INSERT INTO points_transfers ({', '.join(_TRANSFER_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join(':' + c for c in _TRANSFER_COLUMNS)})"
    " RETURNING id, credit_account_id, amount)"
    " INSERT INTO points_lots (account_id, transfer_id, amount, remaining, expires_at)"
    " SELECT credit_account_id, id, amount, amount, :lot_expires_at FROM t"
    " RETURNING transfer_id"
)
_PG_INSERT_WITH_LOT = pg.psycopg_sql(_INSERT_WITH_LOT.text)
_PG_INSERT_ONE = pg.psycopg_sql(
    f"INSERT INTO points_transfers ({', '.join(_TRANSFER_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join(':' + c for c in _TRANSFER_COLUMNS)}) RETURNING id"
)


def opens_lot(p: Posting) -> bool:
    """Whether `p` creates a lot (a posted credit to a citizen that is not a reversal)."""
    return (
        p.status is TransferStatus.POSTED
        and p.credit.kind is AccountKind.CITIZEN
        and p.reversal_of is None
        and p.lot_expires_at is not None
    )


def insert_transfers(
    conn: Connection, rows: list[dict[str, Any]], lot_expires_at: datetime | None = None
) -> list[int]:
    """Insert the transfers; with `lot_expires_at` (PostgreSQL, one row), its lot too."""
    raw = pg.connection(conn)
    try:
        if lot_expires_at is not None:
            params = {**rows[0], "lot_expires_at": lot_expires_at}
            if raw is not None:
                return [_first(raw.row(_PG_INSERT_WITH_LOT, params))]
            return [conn.execute(_INSERT_WITH_LOT, params).scalar_one()]
        if len(rows) == 1 and raw is not None:
            return [_first(raw.row(_PG_INSERT_ONE, rows[0]))]
        if len(rows) == 1:
            return [conn.execute(_INSERT_ONE, rows[0]).scalar_one()]
        result = conn.execute(_INSERT_MANY, rows)
        return list(result.scalars())
    except IntegrityError as exc:
        if "idempotency_key" in str(exc.orig):
            raise DuplicateKey(str(exc.orig)) from exc
        raise


# PostgreSQL, one posting that credits a citizen and opens a lot (a grant, say): the
# citizen's row update (its lock, first in the lock order), the transfer and the lot in
# one statement. No row back means the account is missing (or refused the change): the
# statement then changed nothing, and `write` takes the general path.
_CREDITED = [c for c in _TRANSFER_COLUMNS if c not in ("credit_account_id", "credit_balance")]
_PG_CREDIT_CITIZEN = pg.psycopg_sql(  # column names from the model, values bound
    "WITH a AS (UPDATE points_accounts SET balance = balance + :b,"  # noqa: S608
    " debits_pending = debits_pending + :dp, credits_pending = credits_pending + :cp"
    " WHERE municipality_id = :m AND kind = 'citizen' AND owner = :o"
    " AND balance + :b - debits_pending - :dp >= 0 RETURNING id, balance),"
    f" t AS (INSERT INTO points_transfers ({', '.join(_CREDITED)},"
    " credit_account_id, credit_balance)"
    f" SELECT {', '.join(':' + c for c in _CREDITED)}, a.id, a.balance FROM a"
    " RETURNING id, credit_account_id, amount),"
    " l AS (INSERT INTO points_lots (account_id, transfer_id, amount, remaining, expires_at)"
    " SELECT credit_account_id, id, amount, amount, :lot_expires_at FROM t)"
    " SELECT t.id, a.id, a.balance FROM t, a"
)


def credit_citizen(
    raw: pg.Raw, row: dict[str, Any], effect: dict[str, int], owner: str, expires_at: datetime
) -> tuple[int, int, int] | None:
    """(transfer id, account id, balance after) of the one-statement credit, or None
    when the citizen's account is missing or refused (nothing was changed then)."""
    params = {**row, **effect, "m": row["municipality_id"], "o": owner}
    params["lot_expires_at"] = expires_at
    try:
        got = raw.row(_PG_CREDIT_CITIZEN, params)
    except IntegrityError as exc:
        if "idempotency_key" in str(exc.orig):
            raise DuplicateKey(str(exc.orig)) from exc
        raise
    return None if got is None else (int(got[0]), int(got[1]), int(got[2]))


def _first(row: tuple[Any, ...] | None) -> int:
    assert row is not None  # noqa: S101  (INSERT ... RETURNING one row)
    return int(row[0])


def pending_order(p: Posting) -> int:
    return p.pending_id or 0


def claim_hold(conn: Connection, p: Posting) -> None:
    """Take the pending transfer off the open holds; only one resolution can win."""
    pending = (
        conn.execute(
            text(
                "SELECT status, debit_account_id, credit_account_id, amount"
                " FROM points_transfers WHERE id = :id"
            ),
            {"id": p.pending_id},
        )
        .mappings()
        .first()
    )
    if (
        pending is None
        or (pending["debit_account_id"], pending["credit_account_id"]) != (p.debit.id, p.credit.id)
        or pending["amount"] != p.amount
        or p.status is TransferStatus.PENDING
    ):
        raise InvalidInput(Code.INVALID_INPUT, f"transfer {p.pending_id} is not this hold")
    if pending["status"] != TransferStatus.PENDING:
        raise Conflict(Code.ALREADY_RESOLVED, "posted without a hold")
    claimed = conn.execute(
        text("DELETE FROM points_open_holds WHERE transfer_id = :id RETURNING transfer_id"),
        {"id": p.pending_id},
    ).first()
    if claimed is None:
        raise Conflict(Code.ALREADY_RESOLVED)


def side_effects(
    conn: Connection, p: Posting, w: Written, now: datetime, lot_written: bool = False
) -> None:
    """Holds, lots and caps that follow from one written transfer (`lot_written`: its lot
    was inserted with it)."""
    if p.pays_from_program:
        # Counted when held or posted at once, never again when a hold is posted.
        caps.count(conn, p, w.credit_account_id)
    if p.status is TransferStatus.PENDING:
        if p.hold_until is None:
            raise InvalidInput(Code.INVALID_INPUT, "a pending transfer needs hold_until")
        conn.execute(_INSERT_HOLD, {"transfer_id": w.id, "hold_until": p.hold_until})
        return
    if p.status is TransferStatus.VOIDED:
        if p.debit.kind is AccountKind.PROGRAM and p.credit.kind is AccountKind.CITIZEN:
            caps.release(conn, p, w.credit_account_id, payment=True)  # as if never held
        return
    if p.credit.kind is AccountKind.CITIZEN:
        if p.reversal_of is not None:
            _restore_lots(conn, p, w, now)
        elif not lot_written:
            if p.lot_expires_at is None:
                raise InvalidInput(Code.INVALID_INPUT, "a credit to a citizen needs an expiry")
            conn.execute(
                _INSERT_LOT,
                {
                    "account_id": w.credit_account_id,
                    "transfer_id": w.id,
                    "amount": p.amount,
                    "remaining": p.amount,
                    "expires_at": p.lot_expires_at,
                },
            )
    if p.debit.kind is AccountKind.CITIZEN:
        _consume_lots(conn, p, w, now)
        if p.kind is TransferKind.GRANT_REVOKE:
            caps.release(conn, p, w.debit_account_id, payment=False)


def _consume_lots(conn: Connection, p: Posting, w: Written, now: datetime) -> None:
    """Take `p.amount` out of the citizen's lots: FIFO by expiry for spends, the reversed
    grant's own lot for a revoke, exactly the expired lots for an expiry."""
    account = w.debit_account_id
    if p.kind is TransferKind.GRANT_REVOKE:
        sql = "SELECT id, remaining FROM points_lots WHERE transfer_id = :t AND remaining > 0"
        params: dict[str, Any] = {"t": p.reversal_of}
    elif p.kind is TransferKind.EXPIRY:
        sql = (
            "SELECT id, remaining FROM points_lots WHERE account_id = :a AND remaining > 0"
            " AND expires_at <= :now ORDER BY expires_at, id"
        )
        params = {"a": account, "now": now}
    else:
        # Expired lots are skipped, not spent: their points go to the sink, not a shop.
        sql = (
            "SELECT id, remaining FROM points_lots WHERE account_id = :a AND remaining > 0"
            " AND expires_at > :now ORDER BY expires_at, id LIMIT :n OFFSET :o"
        )
        params = {"a": account, "now": now, "n": _LOT_PAGE, "o": 0}
    left = p.amount
    taken: list[tuple[int, int]] = []
    while left > 0:
        lots = conn.execute(text(sql), params).all()
        for lot_id, remaining in lots:
            take = remaining if p.kind is TransferKind.EXPIRY else min(remaining, left)
            taken.append((lot_id, take))
            left -= take
            if left <= 0 and p.kind is not TransferKind.EXPIRY:
                break
        if "o" not in params or len(lots) < _LOT_PAGE:
            break
        params["o"] += _LOT_PAGE
    if left != 0:
        if p.kind is TransferKind.GRANT_REVOKE:
            raise Refused(Code.NOT_REVERSIBLE, "the granted points were already used")
        if p.kind is TransferKind.EXPIRY:
            raise Conflict(Code.BUSY, "expired lots changed; recompute")
        raise Refused(Code.INSUFFICIENT_POINTS)
    _move(conn, w.id, [(lot, -take) for lot, take in taken])


def _restore_lots(conn: Connection, p: Posting, w: Written, now: datetime) -> None:
    """Give a refund back to the lots the spend took from, latest expiry first (the
    points keep their original expiry: a refund does not extend their life).

    A reversal that carries `lot_expires_at` (a missed project's return, when the
    municipality gives returned points a fresh life) gives back into the lots still live
    only; what came from lots already past their expiry goes into one new lot expiring
    then (its moves are not restores: the old lots stay as the expiry job left them)."""
    fresh = p.lot_expires_at
    net = conn.execute(
        text(
            "SELECT m.lot_id, SUM(m.delta) AS net, l.expires_at FROM points_lot_moves m"
            " JOIN points_lots l ON l.id = m.lot_id WHERE m.transfer_id = :t OR m.transfer_id"
            " IN (SELECT id FROM points_transfers WHERE reversal_of = :t)"
            " GROUP BY m.lot_id, l.expires_at ORDER BY l.expires_at DESC, m.lot_id DESC"
        ),
        {"t": p.reversal_of},
    ).all()
    left = p.amount
    moves: list[tuple[int, int]] = []
    renewed = 0
    for lot_id, consumed, expires in net:
        give = min(-int(consumed), left)
        if give > 0:
            if fresh is not None and _utc(expires) <= now:
                renewed += give
            else:
                moves.append((lot_id, give))
            left -= give
    if left:
        raise Refused(Code.REFUND_EXCEEDS_SPENT)
    _move(conn, w.id, moves)
    if renewed:
        conn.execute(
            _INSERT_LOT,
            {
                "account_id": w.credit_account_id,
                "transfer_id": w.id,
                "amount": renewed,
                "remaining": renewed,
                "expires_at": fresh,
            },
        )


def _utc(value: Any) -> datetime:
    """A lot's expiry as read by raw SQL: aware on PostgreSQL, naive UTC text on SQLite."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _move(conn: Connection, transfer_id: int, moves: list[tuple[int, int]]) -> None:
    if not moves:
        return
    conn.execute(
        text("UPDATE points_lots SET remaining = remaining + :d WHERE id = :id"),
        [{"d": d, "id": lot} for lot, d in moves],
    )
    conn.execute(
        _INSERT_MOVE,
        [{"lot_id": lot, "transfer_id": transfer_id, "delta": d} for lot, d in moves],
    )


def check_reversal(conn: Connection, p: Posting, w: Written) -> None:
    """A reversal swaps the original's accounts and never exceeds it in total."""
    orig = (
        conn.execute(
            text(
                "SELECT kind, status, debit_account_id, credit_account_id, amount"
                " FROM points_transfers WHERE id = :id"
            ),
            {"id": p.reversal_of},
        )
        .mappings()
        .first()
    )
    if (
        orig is None
        or _REVERSES.get(p.kind) != orig["kind"]
        or orig["status"] != TransferStatus.POSTED
        or (orig["debit_account_id"], orig["credit_account_id"])
        != (w.credit_account_id, w.debit_account_id)
    ):
        raise Refused(Code.NOT_REVERSIBLE)
    total = conn.execute(
        text("SELECT SUM(amount) FROM points_transfers WHERE reversal_of = :id"),
        {"id": p.reversal_of},
    ).scalar_one()
    if total > orig["amount"]:
        raise Refused(
            Code.REFUND_EXCEEDS_SPENT if p.kind is TransferKind.REFUND else Code.NOT_REVERSIBLE
        )
