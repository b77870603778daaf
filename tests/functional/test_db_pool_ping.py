"""`webapp.db.make_engine` on PostgreSQL: a pooled connection is pinged on checkout only
after it sat idle IDLE_PING_SECONDS, and one psycopg knows is dead is replaced unpinged.

The server is ICHIMAI_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test,
trust auth), as in tests/functional/points/. Unreachable: the tests skip locally, and fail
under CI (CI=true). The idle time comes from a fake monotonic clock installed in
webapp.db only, never from sleeping: load on the machine cannot change the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.support.postgres import PG_URL, server_engine, terminate
from webapp import db
from webapp.db import IDLE_PING_SECONDS, make_engine

# Generous: only how long the server may take to end a terminated backend, never a verdict.


@pytest.fixture(scope="module")
def admin() -> Iterator[Engine]:
    """An unpooled engine on the test database (it terminates the victims' backends)."""
    with server_engine(poolclass=NullPool) as engine:
        yield engine


@dataclass
class Clock:
    """The monotonic clock webapp.db reads, moved by hand."""

    now: float = 1000.0

    def monotonic(self) -> float:
        """The current fake time."""
        return self.now


@dataclass
class Pings:
    """What the dialect's do_ping was asked to do."""

    calls: int = 0
    failures: int = 0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fake clock for webapp.db alone (SQLAlchemy and psycopg keep the real one)."""
    fake = Clock()
    monkeypatch.setattr(db, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


@pytest.fixture
def engine(admin: Engine) -> Iterator[Engine]:
    """The platform's engine (make_engine) on the test database."""
    engine = make_engine(PG_URL)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Pings:
    """Count the engine dialect's pings (and the failed ones); they still reach the server."""
    seen = Pings()
    real = engine.dialect.do_ping

    def spy(dbapi_connection: Any) -> bool:
        seen.calls += 1
        try:
            return real(dbapi_connection)
        except Exception:
            seen.failures += 1
            raise

    monkeypatch.setattr(engine.dialect, "do_ping", spy)
    return seen


def backend_pid(engine: Engine) -> int:
    """Check a connection out, ask for its server process id, check it back in."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.mark.parametrize(
    ("idle", "pinged"),
    [
        (0.0, 0),
        (IDLE_PING_SECONDS - 0.1, 0),
        (IDLE_PING_SECONDS, 1),
        (IDLE_PING_SECONDS * 30, 1),
    ],
    ids=["just-back", "under-the-limit", "at-the-limit", "long-idle"],
)
def test_a_pooled_connection_is_pinged_only_after_sitting_idle(
    engine: Engine, clock: Clock, pings: Pings, idle: float, pinged: int
) -> None:
    first = backend_pid(engine)
    assert pings.calls == 0  # a new connection is never pinged
    clock.now += idle
    assert backend_pid(engine) == first  # the same connection, alive: kept
    assert (pings.calls, pings.failures) == (pinged, 0)
    for _ in range(3):  # each checkin restarts the idle time: back moments ago, no ping
        assert backend_pid(engine) == first
    assert pings.calls == pinged


def test_an_idle_connection_whose_backend_was_killed_is_replaced_on_checkout(
    engine: Engine, admin: Engine, clock: Clock, pings: Pings
) -> None:
    victim = backend_pid(engine)
    terminate(admin, victim)  # psycopg has not noticed: no I/O since
    clock.now += IDLE_PING_SECONDS + 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    assert (pings.calls, pings.failures) == (1, 1)  # found out by the ping, not the caller


def test_a_connection_dropped_moments_after_use_fails_once_as_a_disconnect(
    engine: Engine, admin: Engine, clock: Clock, pings: Pings
) -> None:
    """The documented price of not pinging every checkout: the first statement on such a
    connection fails as a disconnect (the request's key makes it safe to retry), and the
    engine recovers on its own."""
    victim = backend_pid(engine)
    terminate(admin, victim)
    clock.now += IDLE_PING_SECONDS / 4
    with engine.connect() as connection, pytest.raises(DBAPIError) as caught:
        connection.execute(text("SELECT 1"))
    assert caught.value.connection_invalidated
    assert pings.calls == 0
    assert backend_pid(engine) != victim


def _close(dbapi: psycopg.Connection[Any], admin: Engine, pid: int) -> None:
    dbapi.close()


def _break(dbapi: psycopg.Connection[Any], admin: Engine, pid: int) -> None:
    terminate(admin, pid)
    with pytest.raises(psycopg.OperationalError):
        dbapi.execute("SELECT 1")  # psycopg learns the server is gone: broken


@pytest.mark.parametrize("kill", [_close, _break], ids=["closed", "broken"])
def test_a_connection_psycopg_knows_is_dead_is_replaced_without_a_ping(
    engine: Engine, admin: Engine, clock: Clock, pings: Pings, kill: Any
) -> None:
    with engine.connect() as connection:
        victim = int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        dbapi = connection.connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    kill(dbapi, admin, victim)  # while it sits in the pool
    assert dbapi.closed or dbapi.broken
    clock.now += IDLE_PING_SECONDS * 30  # long idle: only the closed check spares the ping
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
        assert connection.connection.dbapi_connection is not dbapi
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    assert pings.calls == 0
