"""Account rows: the locking UPDATEs, opening a citizen's account, and (on PostgreSQL)
the shared-row UPDATEs that travel with the COMMIT."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, NoReturn

from sqlalchemy import Connection, Engine, Executable, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ... import pgraw as pg
from ..errors import Code, InvalidInput, PointsError, Refused
from ..models import BOUNDED_KINDS, Account, AccountKind, table
from .postings import Acct, Effect

_UPDATE = (
    "UPDATE points_accounts SET balance = balance + :b, debits_pending = debits_pending + :dp,"
    " credits_pending = credits_pending + :cp WHERE {where}"
    " RETURNING id, kind, municipality_id, balance, debits_pending"
)
_BOUND = " AND balance + :b - debits_pending - :dp >= 0"
_BY_ID = text(_UPDATE.format(where="id = :id"))
_BY_ID_BOUNDED = text(_UPDATE.format(where="id = :id" + _BOUND))
_CITIZEN = "municipality_id = :m AND kind = 'citizen' AND owner = :o"
_BY_OWNER = text(_UPDATE.format(where=_CITIZEN + _BOUND))
_PG = {
    stmt: pg.psycopg_sql(stmt.text) for stmt in (_BY_ID, _BY_ID_BOUNDED, _BY_OWNER)
}  # fmt: skip


def _refused(kind: AccountKind, e: Effect) -> PointsError:
    if kind is AccountKind.PROGRAM:
        return Refused(Code.BUDGET_EXHAUSTED)
    if e.revoked:
        return Refused(Code.NOT_REVERSIBLE, "the granted points were already used")
    return Refused(Code.INSUFFICIENT_POINTS)


def apply(conn: Connection, acct: Acct, e: Effect, now: datetime) -> dict[str, Any]:
    """UPDATE one account (taking its row lock); refuse if a bounded one would go below 0."""
    params: dict[str, object] = {"b": e.balance, "dp": e.debits_pending, "cp": e.credits_pending}
    if acct.id is None:
        stmt, params = _BY_OWNER, {**params, "m": acct.municipality_id, "o": acct.mykey_id}
    else:
        stmt = _BY_ID_BOUNDED if acct.kind in BOUNDED_KINDS else _BY_ID
        params["id"] = acct.id
    raw = pg.connection(conn)

    def update() -> Any:
        if raw is not None:
            return raw.one(_PG[stmt], params)
        return conn.execute(stmt, params).mappings().first()

    row = update()
    if row is None and acct.id is None and not e.debited:
        # First credit to this citizen here: create the account, then update it. A
        # concurrent creator makes ours a no-op (ON CONFLICT DO NOTHING), not an error.
        _create_citizen(conn, acct, now)
        row = update()
    if row is None:
        if (
            acct.id is not None
            and conn.execute(
                text("SELECT 1 FROM points_accounts WHERE id = :id"), {"id": acct.id}
            ).first()
            is None
        ):
            raise InvalidInput(Code.INVALID_INPUT, f"no account {acct.id}")
        raise _refused(acct.kind, e)
    if row["kind"] != acct.kind or row["municipality_id"] != acct.municipality_id:
        raise InvalidInput(Code.INVALID_INPUT, "account does not match its municipality/kind")
    return dict(row)


def _create_citizen(conn: Connection, acct: Acct, now: datetime) -> None:
    values = {
        "municipality_id": acct.municipality_id,
        "kind": AccountKind.CITIZEN.value,
        "owner": acct.mykey_id,
        "balance": 0,
        "debits_pending": 0,
        "credits_pending": 0,
        "created_at": now,
    }
    conn.execute(_open_citizen(conn.dialect.name), values)


@cache
def _open_citizen(dialect: str) -> Executable:
    """INSERT ... ON CONFLICT DO NOTHING for this dialect (both spell it the same way)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table(Account)).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table(Account)).on_conflict_do_nothing()


# --- Shared rows, updated with the COMMIT ----------------------------------------------
#
# On PostgreSQL the UPDATEs of shared system rows wait for the commit and travel with it
# in one round trip (one simple-protocol query: UPDATE ...; UPDATE ...; COMMIT).
# A hot row, such as a busy program's budget, is then locked only while the server runs
# the UPDATE and the COMMIT, never while the client process waits for a CPU. The CHECK
# constraint on bounded accounts is the check here: a budget overspent fails the UPDATE,
# and the COMMIT behind it is not run. A `before_commit` hook applies them the ordinary
# way on any commit that does not go through `run`, so none is ever lost.

_FINALS = "points.ledger.finals"
_PG_FINAL = (
    "UPDATE points_accounts SET balance = balance + %(b)s,"
    " debits_pending = debits_pending + %(dp)s, credits_pending = credits_pending + %(cp)s"
    " WHERE id = %(id)s"
)


def defer(session: Session, effects: dict[Acct, Effect]) -> None:
    finals: dict[Acct, Effect] = session.info.setdefault(_FINALS, {})
    for acct, e in effects.items():
        f = finals.setdefault(acct, Effect())
        f.balance += e.balance
        f.debits_pending += e.debits_pending
        f.credits_pending += e.credits_pending


def _apply_finals(session: Session) -> None:
    """Apply deferred updates the ordinary way (a commit outside `run`)."""
    finals: dict[Acct, Effect] = session.info.pop(_FINALS, {})
    if not finals:
        return
    conn = session.connection()
    for acct in sorted(finals, key=Acct.lock_key):
        e = finals[acct]
        params = {"id": acct.id, "b": e.balance, "dp": e.debits_pending, "cp": e.credits_pending}
        try:
            conn.execute(_BY_ID, params)
        except IntegrityError as exc:
            _raise_bounded(exc, acct)


def _forget_finals(session: Session, _transaction: object) -> None:
    session.info.pop(_FINALS, None)


# On every Session, once: hooking each session that defers costs more than the check.
event.listen(Session, "before_commit", _apply_finals)
event.listen(Session, "after_transaction_end", _forget_finals)


def _raise_bounded(exc: Exception, acct: Acct | None = None) -> NoReturn:
    """A bounded account's CHECK failing is a refusal; anything else is raised as is."""
    if "bounded_not_negative" not in str(getattr(exc, "orig", exc)):
        raise exc
    if acct is None or acct.kind is AccountKind.PROGRAM:
        raise Refused(Code.BUDGET_EXHAUSTED) from exc
    raise Refused(Code.INSUFFICIENT_POINTS) from exc


def available(session: Session, account_id: int) -> int:
    """What a bounded account (a program's budget) has left now, without locking it: an
    estimate to size a payment by, which the CHECK at the UPDATE then holds to (a payment
    sized on a figure that moved meanwhile is refused as the budget exhausted)."""
    row = (
        session.connection()
        .execute(
            text("SELECT balance - debits_pending FROM points_accounts WHERE id = :id"),
            {"id": account_id},
        )
        .first()
    )
    if row is None:
        raise InvalidInput(Code.INVALID_INPUT, f"no account {account_id}")
    finals: dict[Acct, Effect] = session.info.get(_FINALS, {})
    mine = [e for a, e in finals.items() if a.id == account_id]  # deferred in this session
    return int(row[0]) + sum(e.balance - e.debits_pending for e in mine)


def commit(session: Session) -> None:
    """Commit, sending deferred shared-row updates and the COMMIT in one round trip.

    Only when the session's commit ends the database transaction: a session joined to a
    caller's connection, or inside a savepoint, commits the ordinary way (the
    `before_commit` hook applies the updates), and the caller's transaction goes on."""
    if not _ends_the_transaction(session):
        session.commit()
        return
    finals: dict[Acct, Effect] = session.info.pop(_FINALS, {})
    if finals:
        raw = pg.connection(session.connection())
        assert raw is not None  # noqa: S101  (only PostgreSQL defers)
        rows = [
            {"id": a.id, "b": f.balance, "dp": f.debits_pending, "cp": f.credits_pending}
            for a, f in sorted(finals.items(), key=lambda item: item[0].lock_key())
        ]
        try:
            raw.run_then_commit(_PG_FINAL, rows)
        except Exception as exc:
            _raise_bounded(exc)
    session.commit()


def _ends_the_transaction(session: Session) -> bool:
    """Whether committing `session` commits the database transaction: it opened its own
    connection from an engine, and no savepoint is open."""
    return isinstance(session.get_bind(), Engine) and not session.in_nested_transaction()
