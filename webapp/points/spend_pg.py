"""A spend, and a merchant's refund, on PostgreSQL as one function call that is its own
transaction.

`spend.spend` on the general path is BEGIN, the merchant, its municipality's accepted
categories, the citizen's row, the merchant's row, the transfer, the live lots, their
updates and moves, and the COMMIT: eight round trips and as many statements of Python.
Here it is one call of `points_spend_v1` (webapp.points.pg_functions) on a lane
connection (webapp.pglane), an implicit transaction: the merchant must be
active and its category accepted, the citizen's row is updated first under the bound
(balance less holds never below zero), the merchant's next, then the transfer (with both
running balances) and the lots, soonest expiry first, expired ones skipped, each with its
move, exactly as `ledger.write` does them.

No row back, or an error, means nothing was written (an unknown or inactive merchant, a
category not accepted, too few points or live lots, a key already used, a deadlock...):
the caller takes the general path, which gives the reason or replays the key. Used only
when the spend is the whole transaction (nothing open on the session) at the server's
default isolation, and only on a lane connection (when the lane is busy, the general
path runs: a spend is rarer than a grant and needs no second way to the same call).

A refund (`points_refund_v1`) likewise: the spend must be the merchant's, inside its
municipality's refund window (its own, or the platform's, passed in), and not compacted;
the citizen's row, then the merchant's, the reversal (both running balances), the points
back into the lots the spend took from (net of earlier refunds), latest expiry first,
and the sum of the spend's refunds never past it; anything else (or a replayed key)
leaves it to the general path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import pglane as lanes
from . import pg_functions
from .models import Transfer
from .retention import window

log = logging.getLogger(__name__)

# merchant, MyKey ID, points, idempotency key, payload hash, now
_SPEND = f"SELECT * FROM {pg_functions.SPEND_V1_NAME}(%s, %s, %s, %s, %s, %s)"  # noqa: S608
# merchant, spend, points, idempotency key, payload hash, now, the platform's window
_REFUND = f"SELECT * FROM {pg_functions.REFUND_V1_NAME}(%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608


@dataclass(frozen=True, slots=True)
class OneSpend:
    """What the call wrote."""

    transfer_id: int
    merchant: str
    balance: int


def spend_alone(
    session: Session,
    merchant_id: int,
    citizen: str,
    points: int,
    key: str,
    digest: str,
    now: datetime,
) -> OneSpend | None:
    """The spend written by one call, or None (see the module doc). A lost connection is
    raised as Core raises it: the spend may then be retried with the same key."""
    row = _call(session, _SPEND, (merchant_id, citizen, points, key, digest, now))
    if row is None:
        return None
    transfer_id, merchant, balance = row
    return OneSpend(transfer_id, merchant, balance)


@dataclass(frozen=True, slots=True)
class OneRefund:
    """What the call wrote: the refund, and what is left to refund of the spend."""

    transfer_id: int
    refundable_left: int


def refund_alone(
    session: Session,
    merchant_id: int,
    spend_id: int,
    points: int,
    key: str,
    digest: str,
    now: datetime,
) -> OneRefund | None:
    """The refund written by one call, or None (see the module doc)."""
    args = (merchant_id, spend_id, points, key, digest, now, window.platform_days())
    row = _call(session, _REFUND, args)
    if row is None:
        return None
    transfer_id, left = row
    return OneRefund(transfer_id, left)


def _call(session: Session, sql: str, args: tuple[object, ...]) -> tuple[Any, ...] | None:
    """The function's row, or None: not possible here, or nothing written."""
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        return None
    bind = session.get_bind(Transfer)
    if not isinstance(bind, Engine):
        return None
    found = lanes.lane(bind)
    if found is None:
        return None
    raw = found.get()
    if raw is None:
        return None
    ok = False
    try:
        row = raw.row(sql, args)
        ok = True
    except DBAPIError as exc:
        ok = True
        if exc.connection_invalidated:
            raise
        log.debug("points: general path after %s", type(exc.orig).__name__)
        return None
    finally:
        found.put(raw, ok)
    return row
