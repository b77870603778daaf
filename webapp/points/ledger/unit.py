"""Units of work: one write transaction with retries, replays of idempotency keys, and
the small reads and account openings the services need."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ..errors import Busy, Code, Conflict, PointsError
from ..models import Account, AccountKind, Transfer
from .accounts import commit
from .postings import DuplicateKey, Written

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 12


def backoff(attempt: int) -> None:
    """Wait before retry `attempt` (0-based): exponential, capped at 0.2 s, with full
    jitter, so transactions that failed together on one hot row do not retry together."""
    time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311  (not a secret)


def open_account(
    session: Session, municipality_id: int, kind: AccountKind, owner: str, now: datetime
) -> Account:
    """A new empty account (accounts start at zero; only transfers change balances)."""
    account = Account(
        municipality_id=municipality_id,
        kind=kind.value,
        owner=owner,
        balance=0,
        debits_pending=0,
        credits_pending=0,
        created_at=now,
    )
    session.add(account)
    session.flush()
    return account


def find(session: Session, key: str) -> Transfer | None:
    """The transfer written under `key`, if any (a point read on the unique key)."""

    return session.scalars(select(Transfer).where(Transfer.idempotency_key == key)).first()


def check_replay(first: Transfer, payload_hash: str) -> None:
    """Refuse a replayed key whose payload differs from the first request's."""
    if first.payload_hash != payload_hash:
        raise Conflict(Code.IDEMPOTENCY_CONFLICT)


def as_written(t: Transfer) -> Written:
    """The Written view of a stored transfer."""
    return Written(
        id=t.id,
        kind=t.kind,
        status=t.status,
        amount=t.amount,
        debit_account_id=t.debit_account_id,
        credit_account_id=t.credit_account_id,
        debit_balance=t.debit_balance,
        credit_balance=t.credit_balance,
        created_at=t.created_at,
    )


def begin(session: Session) -> None:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.in_transaction:
            # Take the write lock up front: a deferred transaction that reads and then
            # writes fails with SQLITE_BUSY_SNAPSHOT under WAL instead of waiting.
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def retryable(exc: Exception) -> bool:
    orig = getattr(exc, "orig", exc)  # SQLAlchemy's wrapper, or psycopg's own error
    if getattr(orig, "sqlstate", None) in {"40001", "40P01"}:  # serialization, deadlock
        return True
    return isinstance(exc, DBAPIError) and "database is locked" in str(orig)


def run(session: Session, work: Callable[[], T], replay: Callable[[], T | None]) -> T:
    """Run `work` in one write transaction and commit; on refusal or a taken key, answer
    with `replay()` (the first result of the same key) when there is one.

    A request retried with the same key thus returns the first result even when running
    it again would now be refused (a spend retried after the balance was used up).
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            begin(session)
            result = work()
            commit(session)
            return result
        except (DuplicateKey, PointsError) as exc:
            session.rollback()
            first = read(session, replay)
            if first is not None:
                return first
            if isinstance(exc, DuplicateKey):
                continue  # the key's holder rolled back: try again
            raise
        except Exception as exc:
            session.rollback()
            if not retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                if retryable(exc):
                    raise Busy(Code.BUSY) from exc
                raise
            log.info("points ledger: retrying after %s", type(exc).__name__)
            backoff(attempt)
        except BaseException:
            session.rollback()
            raise
    raise Busy(Code.BUSY)


def read(session: Session, fn: Callable[[], T]) -> T:
    """Run a read (a job's scan, a replay lookup) and end its transaction; retried like a
    write when the database asks (SERIALIZABLE may cancel even a read-only transaction)."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            result = fn()
            session.rollback()
            return result
        except Exception as exc:
            session.rollback()
            if not retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            backoff(attempt)
    raise Busy(Code.BUSY)
