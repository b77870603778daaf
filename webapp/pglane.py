"""The lane: a few connections of an engine kept in autocommit for the ledger's one-call
transfers (webapp.points.pg_functions) and a counter tap's lookup (webapp.identity
.services.lookup_at), with their prepared statements, out of the pool's way.

(A pooled connection cannot keep a prepared statement: psycopg forgets its prepared
statements at every ROLLBACK, and every read-only request ends with one, so the same
read is planned again at each request.)

A transfer that is one function call needs nothing from SQLAlchemy: no Session, no
Connection, no pool checkout and check-in with their events and reset, no switch into
autocommit and back. On this path those cost more client CPU than the call itself, and
the client's CPU is what bounds the ledger's throughput on a small machine. So each
engine's pool lends the lane up to `SIZE` connections for good (checked out once, kept);
the lane hands them out by a list pop and takes them back by an append (atomic under
the GIL, and under gevent), each already in autocommit with the ledger's statements
prepared on it at their first use, so a call is one Bind/Execute of a server-side
prepared statement (the name and a few values as text), one round trip, one row back
(`pg.Raw.row` on a lane connection).

When every lane connection is busy (more threads or greenlets calling at once than
`SIZE`), `take` says None and the caller uses the pool the ordinary way (grant_pg and
spend_pg then run the same call on a pooled connection switched into autocommit).

Errors are raised as Core raises them (webapp.pgraw.Raw): a lost connection is
an OperationalError with `connection_invalidated` set, the connection is dropped from the
lane and the pool's older connections are invalidated (a restarted server dropped them
all); any other error leaves the connection in the lane (the call was its own
transaction, rolled back by the server). Only the server's default isolation is served
(an implicit transaction cannot say BEGIN ISOLATION LEVEL ...): an engine asked for
another level never uses the lane. A forked process starts a lane of its own.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Connection as PgConnection
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool

from . import db
from . import pgraw as pg

log = logging.getLogger(__name__)

SIZE = 4  # connections an engine lends the lane at most, per process

_DEFAULT_LEVELS = (None, "READ COMMITTED", "AUTOCOMMIT")


class LaneRaw(pg.Raw):
    """A lane connection: a pg.Raw whose calls are prepared statements, and whose loss
    drops it from the lane."""

    __slots__ = ("fairy", "lane", "opened", "since")

    def __init__(self, lane: Lane, fairy: Any, dbapi: PgConnection[Any]) -> None:
        super().__init__(None, dbapi)
        self.lane = lane
        self.fairy = fairy
        self.opened = time.time()  # the pool's clock: compared with its invalidation time
        self.since = time.monotonic()  # idle since
        self.prepared = {}

    def is_disconnect(self, exc: psycopg.Error) -> bool:
        """Whether `exc` says the connection is gone (the dialect's own test)."""
        return bool(self.lane.dialect.is_disconnect(exc, self.dbapi, None))

    def lost(self, exc: Exception) -> None:
        """The server dropped this connection: out of the lane, and the pool's older
        connections invalidated, as Core does on a disconnect."""
        self.lane.pool._invalidate(self.fairy, exc, _checkin=False)
        self.fairy.invalidate(exc)


class Lane:
    """One engine's lane connections, in one process."""

    __slots__ = ("__weakref__", "closed", "dialect", "idle", "lent", "pid", "pool", "root")

    def __init__(self, engine: Engine) -> None:
        self.pool: Pool = engine.pool
        self.root = weakref.ref(_root(engine))
        self.dialect = engine.dialect
        self.idle: list[LaneRaw] = []
        self.lent = 0
        self.pid = os.getpid()
        self.closed = False

    def close(self) -> None:
        """Close the idle connections (engine.dispose(): its pool was replaced); a busy
        one is closed when its call ends."""
        self.closed = True
        while self.idle:
            raw = self.idle.pop()
            raw.fairy.invalidate()  # closes the connection; the old pool forgets it
            self.lent -= 1

    def _open(self) -> LaneRaw | None:
        if self.lent >= SIZE or self.closed:
            return None
        fairy = self.pool.connect()  # kept checked out: the pool's count says so
        dbapi = fairy.dbapi_connection
        if not isinstance(dbapi, PgConnection):
            fairy.close()
            return None
        if dbapi.info.transaction_status != 0:  # not IDLE (never, from the pool)
            fairy.invalidate()
            return None
        dbapi.autocommit = True
        self.lent += 1
        return LaneRaw(self, fairy, dbapi)

    def get(self) -> LaneRaw | None:
        """A lane connection for one call (give it back with `put`), or None when all
        are busy. One that sat idle `db.IDLE_PING_SECONDS` or more is pinged first, as
        the pool does (webapp.db.make_engine): a dead one is replaced, not handed out.
        One older than the pool's last invalidation (any connection of this process
        found lost: a restarted server dropped them all) is replaced without a ping, as
        the pool replaces its own at checkout."""
        while True:
            try:
                raw = self.idle.pop()
            except IndexError:
                return self._open()
            if not (raw.dbapi.closed or raw.dbapi.broken) and raw.opened >= self._invalidated():
                if time.monotonic() - raw.since < db.IDLE_PING_SECONDS:
                    return raw
                try:
                    self.dialect.do_ping(raw.dbapi)
                except Exception as error:  # any failure: replace it
                    log.info("points lane: replacing a connection whose ping failed: %s", error)
                else:
                    return raw
            raw.fairy.invalidate()
            self.lent -= 1

    def _invalidated(self) -> float:
        """When the pool last marked its older connections dead (SQLAlchemy's own record,
        which its checkout compares with each connection's start; 0 when never)."""
        return float(getattr(self.pool, "_invalidate_time", 0.0))

    def put(self, raw: LaneRaw, ok: bool) -> None:
        """Give back `raw` after a call (`ok`: it returned or raised a database error)."""
        if raw.dbapi.closed or raw.fairy.dbapi_connection is None:
            self.lent -= 1  # lost: the next call opens another
        elif ok or raw.dbapi.info.transaction_status == 0:
            raw.since = time.monotonic()
            self.idle.append(raw)
            if self.closed:
                self.close()
        else:  # interrupted mid-call (a BaseException): not reusable as is
            raw.fairy.invalidate()
            self.lent -= 1

    @contextmanager
    def take(self) -> Iterator[LaneRaw | None]:
        """`get` and `put` around a block."""
        raw = self.get()
        if raw is None:
            yield None
            return
        ok = False
        try:
            yield raw
            ok = True
        except (psycopg.Error, DBAPIError):  # the call was its own transaction
            ok = True
            raise
        finally:
            self.put(raw, ok)


# Whether an engine may have a lane (checked once per engine: an option engine asking for
# another isolation level shares its parent's pool, and must not use the lane), and the
# lane of each pool.
_ELIGIBLE: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()
_LANES: weakref.WeakKeyDictionary[Pool, Lane] = weakref.WeakKeyDictionary()
_HOOKED: weakref.WeakSet[Engine] = weakref.WeakSet()


def lane(bind: Engine) -> Lane | None:
    """The lane of `bind`'s pool in this process; None when `bind` is not PostgreSQL through
    psycopg, or asks for an isolation level other than the server's default."""
    eligible = _ELIGIBLE.get(bind)
    if eligible is None:
        eligible = _ELIGIBLE[bind] = _eligible(bind)
    if not eligible:
        return None
    found = _LANES.get(bind.pool)
    if found is None or found.pid != os.getpid():  # new, or a forked process
        found = _LANES[bind.pool] = Lane(bind)
        root = _root(bind)
        if root not in _HOOKED:
            _HOOKED.add(root)
            event.listen(root, "engine_disposed", _dispose)
    return found


def _eligible(bind: Engine) -> bool:
    return (
        bind.dialect.name == "postgresql"
        and bind.dialect.driver == "psycopg"
        and bind.get_execution_options().get("isolation_level") in _DEFAULT_LEVELS
        and getattr(bind.dialect, "_on_connect_isolation_level", None) in _DEFAULT_LEVELS
    )


def _root(bind: Engine) -> Engine:
    """The engine an option engine (engine.execution_options(...)) was made from."""
    while (proxied := getattr(bind, "_proxied", None)) is not None:
        bind = proxied
    return bind


def _dispose(root: Engine) -> None:
    """engine.dispose() replaced the pool: the old pool's lane closes its connections."""
    for pool, found in list(_LANES.items()):
        if pool is not root.pool and found.root() is root:
            found.close()
            _LANES.pop(pool, None)
