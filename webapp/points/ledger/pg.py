"""PostgreSQL's hot path: the ledger's most frequent statements sent through the session's
own psycopg connection, without SQLAlchemy's statement and result layers.

Why: a grant is four short statements, and on this path the client's CPU, not the
server, bounds throughput. SQLAlchemy Core spends about 0.2 ms of client CPU per statement
(cache lookup, parameter and result processing) against psycopg's 0.05 ms; across a grant
that was two thirds of the client's time. The statements run in the same transaction as
everything else the session does (the DBAPI connection is the session's), and psycopg
prepares them on the server after a few uses.

The SQL is written once, with `:name` parameters as `text()` takes them; `psycopg_sql`
gives psycopg's spelling. SQLite keeps the Core path (one writer; its figure has no goal).
Only parameter types psycopg adapts natively are passed (int, str, None, aware datetime),
so the values stored are the ones the Core path stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import ClientCursor, IsolationLevel
from psycopg import Connection as PgConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def psycopg_sql(sql: str) -> str:
    """`sql` with `:name` parameters spelt `%(name)s` (and literal `%` doubled)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class Raw:
    """The psycopg connection under a SQLAlchemy connection, raising what Core raises.

    Errors come out as SQLAlchemy's DBAPIError subclasses (IntegrityError wrapping
    psycopg's UniqueViolation, and so on), so callers catch one family of exceptions on
    either path; a lost connection invalidates the SQLAlchemy connection, as Core does.
    """

    __slots__ = ("conn", "dbapi")

    def __init__(self, conn: Connection, dbapi: PgConnection[Any]) -> None:
        self.conn = conn
        self.dbapi = dbapi

    @contextmanager
    def _errors(self, sql: str, params: Any) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            lost = self.conn.dialect.is_disconnect(exc, self.dbapi, None)
            wrapped = DBAPIError.instance(
                sql, params, exc, psycopg.Error, connection_invalidated=lost
            )
            if lost:
                # As Core does on a disconnect: retire the pool's older connections too
                # (a restarted server dropped them all), then this one.
                self.conn.engine.pool._invalidate(self.conn.connection, exc)
                self.conn.invalidate(exc)
            raise wrapped from exc

    def one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of `sql` (psycopg spelling) as a dict, or None."""
        with self._errors(sql, params), self.dbapi.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """The first row of `sql` (psycopg spelling) as a tuple, or None."""
        with self._errors(sql, params), self.dbapi.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def run_then_commit(self, sql: str, rows: list[dict[str, Any]]) -> None:
        """Run `sql` once per parameter row, then COMMIT, all in one round trip.

        The statements and the COMMIT go as one simple-protocol query (psycopg's
        ClientCursor binds the values client side, quoting them itself). Should one
        statement fail, the server skips the rest, COMMIT included, and the transaction
        is left to roll back.
        """
        with self._errors(sql, rows), ClientCursor(self.dbapi) as cur:
            script = "; ".join(cur.mogrify(sql, params) for params in rows)
            cur.execute(f"{script}; COMMIT")

    def may_run_alone(self) -> bool:
        """Whether a statement may run as its own transaction here: nothing is open on
        the connection yet, and the isolation asked for is the server's default one (an
        implicit transaction cannot say BEGIN ISOLATION LEVEL ...)."""
        d = self.dbapi
        return (
            d.info.transaction_status == TransactionStatus.IDLE
            and not d.autocommit
            and d.isolation_level in (None, IsolationLevel.READ_COMMITTED)
            and not d.read_only
            and not d.deferrable
        )

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Statements run inside are each their own transaction (psycopg's autocommit):
        one round trip, no BEGIN, no COMMIT. Only after `may_run_alone()`."""
        self.dbapi.autocommit = True
        try:
            yield
        finally:
            if not self.dbapi.closed:
                self.dbapi.autocommit = False


def connection(conn: Connection) -> Raw | None:
    """The psycopg connection under `conn`, or None on another database or driver."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    dbapi = conn.connection.dbapi_connection
    return Raw(conn, dbapi) if isinstance(dbapi, PgConnection) else None
