"""The Alembic history builds exactly the tables of every model, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import webapp
from webapp.db import Base, make_engine

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("ICHIMAI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _config() -> Config:
    return Config(str(REPO / "alembic.ini"))


def upgrade_and_diff(engine: Engine) -> list[object]:
    """Run every migration on `engine`, then diff the database against all models."""
    webapp.create_app({"DATABASE_URL": "sqlite://", "TESTING": True})  # loads every model
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(context, Base.metadata)
            if d[0] != "remove_table" or d[1].name != "alembic_version"
        ]


def downgrade(engine: Engine) -> None:
    """Run every downgrade back to an empty database."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")


def test_sqlite_history_matches_every_model(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert upgrade_and_diff(engine) == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A scratch PostgreSQL database, dropped afterwards."""
    admin = make_engine(PG_URL)
    name = f"ichimai_mig_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    engine = make_engine(PG_URL.rsplit("/", 1)[0] + f"/{name}")
    yield engine
    engine.dispose()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_postgresql_history_matches_every_model(pg_engine: Engine) -> None:
    assert upgrade_and_diff(pg_engine) == []
    downgrade(pg_engine)
    assert set(inspect(pg_engine).get_table_names()) <= {"alembic_version"}
