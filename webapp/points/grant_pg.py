"""A staff grant on PostgreSQL as one statement that is its own transaction.

`programs.grant` is the ledger's most frequent write, and the general path costs four
round trips (BEGIN; the program's terms; the citizen's row, the transfer and the lot; the
budget with the COMMIT). Each round trip wakes two processes, and on a busy server the
wake-ups, not the SQL, are most of the cost. Here the whole grant is one prepared
statement sent with no BEGIN (psycopg's autocommit), so PostgreSQL runs it as an
implicit transaction: one round trip, all or nothing.

The statement writes exactly what the general path writes, in the same lock order:

- `p` reads the program's terms, and only a program staff may grant from without a
  per-citizen cap (active, not the partner bonus, in the staff member's municipality);
- `a` updates the citizen's row (its lock first, as in `ledger.write`);
- `t` inserts the transfer (debit balance unset for the shared budget account, credit
  balance the citizen's new balance), `l` its lot;
- `b` takes the points off the budget last; nothing reads it, so PostgreSQL runs it
  after everything else, and the hot row is locked for the shortest time. The CHECK
  constraint on bounded accounts refuses an overspent budget, undoing the statement.

When the statement writes nothing or fails (unknown, inactive or capped program, a
citizen with no account here yet, a key already used, an exhausted budget...), nothing
was changed, and the caller runs the general path, which gives the reason, replays the
key or opens the account. Used only when the grant is the whole transaction (nothing is
open on the session) at the server's default isolation; otherwise the general path runs.
A staff page ends its reads' transaction before granting (webapp.points.views.grant_one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .directory import CitizenDirectory
from .ledger import pg
from .models import AccountKind, ProgramCategory, Transfer, TransferKind, TransferStatus

log = logging.getLogger(__name__)

_GRANT = pg.psycopg_sql(
    "WITH p AS (SELECT id, code, municipality_id, account_id, points_per_grant AS amount,"  # noqa: S608  (enum constants; values bound)
    " expiry_days FROM points_programs WHERE id = :program_id AND active"
    f" AND category <> '{ProgramCategory.PARTNER_BONUS.value}'"
    " AND cap_points_per_citizen IS NULL AND cap_grants_per_citizen IS NULL"
    " AND municipality_id = COALESCE(:municipality_id, municipality_id)),"
    " a AS (UPDATE points_accounts c SET balance = c.balance + p.amount FROM p"
    f" WHERE c.municipality_id = p.municipality_id AND c.kind = '{AccountKind.CITIZEN.value}'"
    " AND c.owner = :owner RETURNING c.id, c.balance),"
    " t AS (INSERT INTO points_transfers (municipality_id, kind, status, debit_account_id,"
    " credit_account_id, amount, idempotency_key, payload_hash, program_id, credit_balance,"
    " created_at)"
    f" SELECT p.municipality_id, '{TransferKind.GRANT.value}', '{TransferStatus.POSTED.value}',"
    " p.account_id, a.id, p.amount, :key, :payload_hash, p.id, a.balance, :now FROM p, a"
    " RETURNING id),"
    " l AS (INSERT INTO points_lots (account_id, transfer_id, amount, remaining, expires_at)"
    " SELECT a.id, t.id, p.amount, p.amount, :now + p.expiry_days * interval '24 hours'"
    " FROM p, a, t),"
    " b AS (UPDATE points_accounts s SET balance = s.balance - p.amount FROM p, t"
    " WHERE s.id = p.account_id)"
    " SELECT t.id, p.code, p.amount, p.expiry_days, a.balance FROM t, p, a"
)


@dataclass(frozen=True, slots=True)
class OneGrant:
    """What the statement wrote."""

    transfer_id: int
    program_code: str
    points: int
    expires_at: datetime
    balance: int


def grant_alone(
    session: Session,
    program_id: int,
    citizen: str,
    key: str,
    digest: str,
    now: datetime,
    directory: CitizenDirectory,
    municipality_id: int | None,
) -> OneGrant | None:
    """The grant written by one statement, or None: not possible here (SQLite, a stricter
    isolation level, work open on the session, which the grant must then join) or not
    written (see the module doc); the caller then takes the general path. A lost
    connection is raised as Core raises it.

    The statement runs on a Core connection of the session's engine, not through the
    session: nothing is open on the session, and its transaction machinery would cost
    more client CPU than the statement itself."""
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        return None
    bind = session.get_bind(Transfer)
    if not isinstance(bind, Engine):
        return None  # a session bound to a caller's connection: its transaction is theirs
    with bind.connect() as conn:
        raw = pg.connection(conn)
        if raw is None or not raw.may_run_alone():
            return None
        params = {
            "program_id": program_id,
            "municipality_id": municipality_id,
            "owner": citizen,
            "key": key,
            "payload_hash": digest,
            "now": now,
        }
        with raw.alone():
            # The directory reads in an implicit transaction of its own too (a point read).
            if not directory.exists(conn, citizen):
                return None
            try:
                row = raw.row(_GRANT, params)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                # A taken key, an exhausted budget, a deadlock: undone by the server; the
                # general path answers (replay, refusal, retry).
                log.debug("points grant: general path after %s", type(exc.orig).__name__)
                return None
    if row is None:
        return None
    transfer_id, code, points, expiry_days, balance = row
    return OneGrant(
        int(transfer_id), code, int(points), now + timedelta(days=expiry_days), int(balance)
    )
