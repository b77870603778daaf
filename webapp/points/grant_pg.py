"""A staff grant on PostgreSQL as one function call that is its own transaction.

`programs.grant` is the ledger's most frequent write, and the general path costs four
round trips (BEGIN; the program's terms; the citizen's row, the transfer and the lot; the
budget with the COMMIT). Each round trip wakes two processes, and on a busy server the
wake-ups, not the SQL, are most of the cost; on a small machine the Python client's CPU
per statement is the rest. Here the whole grant is one call of `points_grant_v1`
(webapp.points.pg_functions), a server-side prepared statement sent with no BEGIN on a
lane connection in autocommit (webapp.pglane), so PostgreSQL runs it as an
implicit transaction: one round trip, all or nothing, a few dozen bytes each way.

The function writes exactly what the general path writes, in the same lock order: the
program's terms (only a program staff may grant from without a per-citizen cap: active,
within its dates, not the partner bonus, in the staff member's municipality), the
citizen's row (its lock first, as in `ledger.write`), the transfer (debit balance unset
for the shared budget account, credit balance the citizen's new balance) and its lot,
and the budget last, so the hot row is locked for the shortest time. The CHECK
constraint on bounded accounts refuses an overspent budget, undoing the call.

When the call writes nothing or fails (unknown, inactive or capped program, a citizen
with no account here yet, a key already used, an exhausted budget...), nothing was
changed, and the caller runs the general path, which gives the reason, replays the key
or opens the account. Used only when the grant is the whole transaction (nothing is
open on the session) at the server's default isolation; otherwise the general path runs.
A staff page ends its reads' transaction before granting (webapp.points.views.grant_one).
When the lane's connections are all busy, the same call runs on a pooled connection
switched into autocommit for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import pglane as lanes
from .. import pgraw as pg
from . import pg_functions
from .directory import CitizenDirectory
from .models import Transfer

log = logging.getLogger(__name__)

# The function's parameters, by position: program, municipality (None: any), MyKey ID,
# idempotency key, payload hash, now.
_GRANT = f"SELECT * FROM {pg_functions.GRANT_V1_NAME}(%s, %s, %s, %s, %s, %s)"  # noqa: S608


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
    """The grant written by one call, or None: not possible here (SQLite, a stricter
    isolation level, work open on the session, which the grant must then join) or not
    written (see the module doc); the caller then takes the general path. A lost
    connection is raised as Core raises it.

    The call runs on a lane connection of the session's engine, or a Core connection of
    its pool, not through the session: nothing is open on the session, and its
    transaction machinery would cost more client CPU than the call itself."""
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        return None
    bind = session.get_bind(Transfer)
    if not isinstance(bind, Engine):
        return None  # a session bound to a caller's connection: its transaction is theirs
    args = (program_id, municipality_id, citizen, key, digest, now)
    found = lanes.lane(bind)
    lane_raw = None if found is None else found.get()
    if found is not None and lane_raw is not None:
        ok = False
        try:
            done = _call(lane_raw, args, now) if directory.exists_on(lane_raw, citizen) else None
            ok = True
        except DBAPIError:
            ok = True
            raise
        finally:
            found.put(lane_raw, ok)
        return done
    with bind.connect() as conn:
        raw = pg.connection(conn)
        if raw is None or not raw.may_run_alone():
            return None
        with raw.alone():
            # The directory reads in an implicit transaction of its own too (a point read).
            return _call(raw, args, now) if directory.exists(conn, citizen) else None


def _call(raw: pg.Raw, args: tuple[Any, ...], now: datetime) -> OneGrant | None:
    try:
        row = raw.row(_GRANT, args)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        # A taken key, an exhausted budget, a deadlock: undone by the server; the general
        # path answers (replay, refusal, retry).
        log.debug("points grant: general path after %s", type(exc.orig).__name__)
        return None
    if row is None:
        return None
    transfer_id, code, points, expiry_days, balance = row
    return OneGrant(transfer_id, code, points, now + timedelta(days=expiry_days), balance)
