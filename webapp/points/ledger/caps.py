"""Per-citizen program caps: what a citizen has had from a capped program, counted under
the citizen's row lock.

A program may cap what one citizen gets from it, in points and in number of payments
(`Program.cap_points_per_citizen`, `cap_grants_per_citizen`). `points_program_citizen_totals`
counts, per (program, citizen account), the points and payments made, held ones included:
a held payment (a conversion's bonus in its holding period) takes its room when it is
held, its posting counts nothing more, and its void gives the room back. A revoke gives
back its points, not the payment (the grant was made). Only capped programs are counted.

Every change of a counter comes with an UPDATE of the citizen's account row in the same
transaction (a payment credits it, a void or revoke changes it too), so a counter is only
touched under its citizen's row lock (step 2 of the package's lock order). `count` is the
check that cannot be beaten: it adds the payment and refuses it past a cap, under that
lock. `room` reads the counter under the same lock beforehand, for a payment that takes
what is left rather than be refused (the conversion bonus).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from ..errors import Code, Refused
from .accounts import apply
from .postings import Acct, Caps, Effect, Posting

_COUNT = text(
    "INSERT INTO points_program_citizen_totals (program_id, account_id, points, grants)"
    " VALUES (:p, :c, :a, 1) ON CONFLICT (program_id, account_id) DO UPDATE SET"
    " points = points_program_citizen_totals.points + excluded.points,"
    " grants = points_program_citizen_totals.grants + 1 RETURNING points, grants"
)
_RELEASE = text(
    "UPDATE points_program_citizen_totals SET points = points - :a, grants = grants - :g"
    " WHERE program_id = :p AND account_id = :c"
)
_READ = text(
    "SELECT points, grants FROM points_program_citizen_totals"
    " WHERE program_id = :p AND account_id = :c"
)


def count(conn: Connection, p: Posting, account_id: int) -> None:
    """Count a payment from a capped program (held or posted); refuse it past a cap."""
    if p.caps is None or not p.caps.any:
        return
    row = conn.execute(_COUNT, {"p": p.program_id, "c": account_id, "a": p.amount}).one()
    if (p.caps.points is not None and row.points > p.caps.points) or (
        p.caps.grants is not None and row.grants > p.caps.grants
    ):
        raise Refused(Code.CAP_REACHED)


def release(conn: Connection, p: Posting, account_id: int, *, payment: bool) -> None:
    """Give back a payment's points (and, with `payment`, its count: a void); a program
    with no counter row was not capped and has nothing to give back."""
    if p.program_id is None:
        return
    params = {"a": p.amount, "g": 1 if payment else 0, "p": p.program_id, "c": account_id}
    conn.execute(_RELEASE, params)


def room(session: Session, citizen: Acct, program_id: int, caps: Caps, now: datetime) -> int | None:
    """Points `citizen` may still get from the program (None: uncapped), read under the
    citizen's row lock, which stays taken until the transaction ends.

    Take it before `write`, in the same transaction: the lock is `write`'s own first one
    (a citizen's row, step 2 of the lock order), taken early. The account is opened if
    this is the citizen's first credit here, so that parallel first payments meet on it.
    """
    if not caps.any:
        return None
    conn = session.connection()
    row = apply(conn, citizen, Effect(), now)  # a zero change: the lock, and the account id
    got = conn.execute(_READ, {"p": program_id, "c": row["id"]}).first()
    points, grants = (int(got[0]), int(got[1])) if got is not None else (0, 0)
    return caps.room(points, grants)
