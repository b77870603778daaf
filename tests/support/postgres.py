"""The PostgreSQL server the functional tests use: its URL, an engine that skips (or,
under CI, fails) when the server does not answer, an app on a scratch database of its
own, and ending a backend from outside."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text

PG_URL = os.environ.get("ICHIMAI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
GONE_WITHIN_SECONDS = 30.0


@contextmanager
def server_engine(**options: Any) -> Iterator[Engine]:
    """An engine on the test database (`options` go to create_engine), disposed after;
    skip, or fail under CI=true, when the server does not answer."""
    engine = create_engine(PG_URL, **options)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "no server"
        engine.dispose()
        message = f"PostgreSQL unreachable at {PG_URL}: {exc.__class__.__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def scratch_app() -> Iterator[Flask]:
    """A test app on a scratch database of its own with the tables made; its lookup
    counts written and its engine disposed before the database is dropped."""
    from webapp import create_app, db
    from webapp.identity import counts
    from webapp.scaled import scratch_database

    with server_engine():
        pass  # skips (fails under CI) without PostgreSQL
    with scratch_database() as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url})
        db.create_all(app)
        try:
            yield app
        finally:
            counts.flush(app.extensions["db_engine"])
            app.extensions["db_engine"].dispose()


def terminate(server: Engine, pid: int) -> None:
    """End backend `pid` from another connection and wait until the server has let it go.

    Autocommit: pg_stat_activity is a snapshot taken once per transaction, so a poll inside
    one transaction would keep seeing the backend that was there at its first read.
    """
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        alive = text("SELECT 1 FROM pg_stat_activity WHERE pid = :p")
        while connection.execute(alive, {"p": pid}).first() is not None:
            assert time.monotonic() < deadline, f"backend {pid} still there"
            time.sleep(0.01)
