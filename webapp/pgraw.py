"""PostgreSQL's hot paths: the most frequent statements (the ledger's writes, a counter
tap's lookup) sent through the session's own psycopg connection, without SQLAlchemy's
statement and result layers.

Why: a grant is four short statements, and on this path the client's CPU, not the
server, bounds throughput. SQLAlchemy Core spends about 0.2 ms of client CPU per statement
(cache lookup, parameter and result processing) against psycopg's 0.05 ms; across a grant
that was two thirds of the client's time; a counter tap's one read (webapp.identity
.services.lookup_at) took three times the plain SELECT. The statements run in the same
transaction as everything else the session does (the DBAPI connection is the session's),
and psycopg prepares them on the server after a few uses.

The SQL is written once, with `:name` parameters as `text()` takes them; `psycopg_sql`
gives psycopg's spelling. SQLite keeps the Core path (one writer; its figure has no goal).
Only parameter types psycopg adapts natively are passed (int, str, bytes, None, aware
datetime), so the values stored are the ones the Core path stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import ClientCursor, IsolationLevel, generators, pq
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
    (webapp.pglane.LaneRaw: the same on a lane connection, with no Core
    connection above it, a kept cursor and prepared calls.)
    """

    __slots__ = ("conn", "dbapi", "prepared")

    def __init__(self, conn: Connection | None, dbapi: PgConnection[Any]) -> None:
        self.conn = conn
        self.dbapi = dbapi
        # Lane connections only: the statements prepared on this connection, by text.
        self.prepared: dict[str, bytes] | None = None

    def lost(self, exc: Exception) -> None:
        """The server dropped the connection: as Core does on a disconnect, retire the
        pool's older connections too (a restarted server dropped them all), then this one."""
        assert self.conn is not None  # noqa: S101  (LaneRaw overrides)
        self.conn.engine.pool._invalidate(self.conn.connection, exc)
        self.conn.invalidate(exc)

    def is_disconnect(self, exc: psycopg.Error) -> bool:
        """Whether `exc` says the connection is gone (the dialect's own test)."""
        assert self.conn is not None  # noqa: S101  (LaneRaw overrides)
        return bool(self.conn.dialect.is_disconnect(exc, self.dbapi, None))

    def wrap(self, sql: str, params: Any, exc: psycopg.Error) -> DBAPIError:
        """`exc` as Core raises it; a lost connection is invalidated first."""
        lost = self.is_disconnect(exc)
        wrapped = DBAPIError.instance(sql, params, exc, psycopg.Error, connection_invalidated=lost)
        if lost:
            self.lost(exc)
        return wrapped

    @contextmanager
    def _errors(self, sql: str, params: Any) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise self.wrap(sql, params, exc) from exc

    def one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of `sql` (psycopg spelling) as a dict, or None."""
        with self._errors(sql, params), self.dbapi.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    def row(self, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The first row of `sql` (psycopg spelling) as a tuple, or None. On a lane
        connection with positional parameters: a server-side prepared statement (see
        `_prepared_row`)."""
        try:
            if self.prepared is not None and type(params) is tuple:
                return self._prepared_row(sql, params)
            with self.dbapi.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchone()
        except psycopg.Error as exc:
            raise self.wrap(sql, params, exc) from exc

    def _prepared_row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Run `sql` as a statement prepared on this connection, at the libpq level.

        psycopg's cursor costs several times the libpq work per call (adapting the
        parameters through its adapters map, the prepared-statement bookkeeping, result
        loaders); for a handful of ints, strings and an aware datetime sent as text, with
        their types left to the server (the function's signature fixes them), the call is
        a Bind/Execute of the statement's name and the values, one round trip, and the
        reply's values are read as text. Waiting uses the connection's own strategy (so it
        cooperates with gevent). Errors come out as psycopg's, from the server's result."""
        assert self.prepared is not None  # noqa: S101  (lane connections only)
        conn = self.dbapi
        pgconn = conn.pgconn
        name = self.prepared.get(sql)
        if name is None:
            name = f"ichimai_{len(self.prepared)}".encode()
            pgconn.send_prepare(name, _dollars(sql).encode())
            _check(conn.wait(generators.execute(pgconn))[-1], conn)
            self.prepared[sql] = name
        # str and int inline (nearly every value), the rest through _text.
        values = [
            v.encode() if type(v) is str else b"%d" % v if type(v) is int else _text(v)
            for v in params
        ]
        pgconn.send_query_prepared(name, values)
        res = conn.wait(generators.execute(pgconn))[-1]
        if res.status != _TUPLES_OK:
            _check(res, conn)
        if res.ntuples == 0:
            return None
        get = res.get_value
        return tuple(
            None if (v := get(0, i)) is None else int(v) if res.ftype(i) in _INTS else v.decode()
            for i in range(res.nfields)
        )

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


_INTS = {20, 21, 23}  # int8, int2, int4
_TUPLES_OK = int(pq.ExecStatus.TUPLES_OK)
_PLACEHOLDER = re.compile(r"%s")


def _dollars(sql: str) -> str:
    """`sql` with psycopg's positional `%s` spelt `$1, $2, ...` (libpq's)."""
    count = iter(range(1, 1 + sql.count("%s")))
    return _PLACEHOLDER.sub(lambda _m: f"${next(count)}", sql)


def _text(value: Any) -> bytes | None:
    """A parameter as PostgreSQL's text input (the server knows its type)."""
    kind = type(value)
    if kind is str:
        return value.encode()  # type: ignore[no-any-return]
    if kind is int:
        return b"%d" % value
    if value is None:
        return None
    if kind is bytes:
        return b"\\x" + value.hex().encode()  # bytea's hex input
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int | str):
        return str(value).encode()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a prepared statement")
        return value.isoformat().encode()
    raise TypeError(f"no text form for {type(value).__name__}")


def _check(res: Any, conn: PgConnection[Any]) -> None:
    """Raise psycopg's error for a failed result."""
    if res.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)


def connection(conn: Connection) -> Raw | None:
    """The psycopg connection under `conn`, or None on another database or driver."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    dbapi = conn.connection.dbapi_connection
    return Raw(conn, dbapi) if isinstance(dbapi, PgConnection) else None
