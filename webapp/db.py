"""Database engine and sessions (SQLAlchemy 2). SQLite (WAL) by default, PostgreSQL at scale."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, MetaData, create_engine, event, exc
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names are stable for migrations."""

    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 2.0
_IDLE_SINCE = "ichimai_idle_since"


def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        # Known dead (psycopg saw the socket close): replace it without a round trip.
        if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
            _lost(engine, proxy)
            raise exc.DisconnectionError("connection closed")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or back from a request moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another one.
            _lost(engine, proxy)
            raise exc.DisconnectionError("ping failed") from error

    return checkout


def _lost(engine: Engine, proxy: Any) -> None:
    """A connection found dead at checkout: the server most likely dropped every
    connection this one's age or older (a restart), so they are replaced at their next
    checkout without a ping, as SQLAlchemy does when a statement meets a disconnect (and
    the lane's, webapp.pglane, before their next call)."""
    engine.pool._invalidate(proxy, None, _checkin=False)


def _name_connection(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """`application_name` = ichimai-<pid>: pg_stat_activity shows which worker process
    holds each backend (what an operator looks at when one hangs; the fault tests find
    the worker serving a request this way)."""
    cparams.setdefault("application_name", f"ichimai-{os.getpid()}")


def make_engine(url: str) -> Engine:
    """An engine for `url`, with WAL and foreign keys on SQLite.

    On PostgreSQL a pooled connection is pinged on checkout only after it sat idle
    IDLE_PING_SECONDS (SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round
    trip per request, a fifth of a grant's). A connection that was in use moments ago is
    handed out as is; should the server drop it all the same (a restart under load), the
    statement fails as a disconnect, SQLAlchemy invalidates the pool's older connections,
    and the request, idempotent by its key, can be retried.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=40)
    event.listen(engine, "do_connect", _name_connection)
    event.listen(engine, "checkin", _stamp_checkin)
    event.listen(engine, "checkout", _ping_if_idle(engine))
    return engine


def init_app(app: Flask) -> None:
    """Create the engine and session factory for `app` and close sessions per request."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["db_engine"] = engine
    app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["db_engine"]  # type: ignore[no-any-return]


def session() -> Session:
    """The request's session (one per app context)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["db_sessionmaker"]()
    return g.db_session  # type: ignore[no-any-return]


@contextmanager
def new_session() -> Iterator[Session]:
    """A fresh session outside a request (background jobs, WebSocket handlers)."""
    s: Session = current_app.extensions["db_sessionmaker"]()
    try:
        yield s
    finally:
        s.close()


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def create_all(app: Flask) -> None:
    """Create every table (tests and the embedded demo; deployments use migrations)."""
    Base.metadata.create_all(app.extensions["db_engine"])
