"""PostgreSQL fixtures for the points ledger: a schema of its own per test, dropped after.

The server is ICHIMAI_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test,
trust auth). Unreachable: the tests skip locally, and fail under CI (CI=true).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from points_pg import schema_url
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.postgres import server_engine
from webapp.db import Base, make_engine
from webapp.points import invariants
from webapp.points.models import POINTS_TABLES


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (pyproject's --strict-markers needs it)."""
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (skips locally if absent)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder runs on PostgreSQL."""
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An engine on the test database; skip or fail when the server does not answer."""
    with server_engine(pool_pre_ping=True) as engine:
        yield engine


@pytest.fixture
def pg_schema(pg_admin: Engine) -> Iterator[str]:
    """A fresh schema for one test, dropped with everything in it afterwards."""
    name = f"points_t_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with pg_admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


@pytest.fixture
def pg_engine(pg_schema: str) -> Iterator[Engine]:
    """The platform's engine (webapp.db.make_engine) on the test's schema, with the points
    tables; the ledger invariants are checked after the test."""
    engine = make_engine(schema_url(pg_schema))
    Base.metadata.create_all(engine, tables=POINTS_TABLES)
    yield engine
    with Session(engine) as audit:
        assert invariants.violations(audit) == {}
    engine.dispose()


@pytest.fixture
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    """A session factory like the app's."""
    return sessionmaker(pg_engine, expire_on_commit=False)
