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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_links_before_0009_keep_what_staff_verified(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """links_0009: staff-verified links stay verified; the others become claims, and two
    claims of one number may then exist (the unique index covers verified links only)."""
    engine = (
        make_engine(f"sqlite:///{tmp_path / 'links.db'}")
        if backend == "sqlite"
        else request.getfixturevalue("pg_engine")
    )
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "sessions_0008")
        connection.execute(
            text(
                "INSERT INTO providers (id, code, kind, name_ja, name_en, terms_ja, terms_en,"
                " terms_version, number_rule, counter_settings, created_at) VALUES"
                " (1, 'JP-1', 'library', 'ä', '', '', '', 1, '{}', '{}', CURRENT_TIMESTAMP)"
            )
        )
        for mykey in ("AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD"):
            connection.execute(
                text(
                    "INSERT INTO mykey_ids (id, created_at, rerolls_used)"
                    " VALUES (:id, CURRENT_TIMESTAMP, 0)"
                ),
                {"id": mykey},
            )
        for mykey, number, staff in (("AAAAAAAA", "111", True), ("BBBBBBBB", "222", False)):
            connection.execute(
                text(
                    "INSERT INTO service_links (mykey_id, provider_id, customer_number,"
                    " accepted_terms_version, verified_by_staff, created_at)"
                    " VALUES (:m, 1, :n, 1, :v, CURRENT_TIMESTAMP)"
                ),
                {"m": mykey, "n": number, "v": staff},
            )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        rows = connection.execute(
            text(
                "SELECT customer_number, verification, verified_at IS NOT NULL"
                " FROM service_links ORDER BY customer_number"
            )
        ).all()
        assert [tuple(r) for r in rows] == [("111", "staff", True), ("222", "unverified", False)]
        # A second claim of 222 is allowed now; a second verified 111 is not.
        connection.execute(
            text(
                "INSERT INTO service_links (mykey_id, provider_id, customer_number,"
                " accepted_terms_version, verification, created_at)"
                " VALUES ('CCCCCCCC', 1, '222', 1, 'unverified', CURRENT_TIMESTAMP)"
            )
        )
    with pytest.raises(Exception, match=r"(?i)unique"), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO service_links (mykey_id, provider_id, customer_number,"
                " accepted_terms_version, verification, created_at)"
                " VALUES ('DDDDDDDD', 1, '111', 1, 'library', CURRENT_TIMESTAMP)"
            )
        )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "sessions_0008")
        rows = connection.execute(
            text("SELECT customer_number, verified_by_staff FROM service_links ORDER BY id")
        ).all()
        # The later claim of 222 goes: the old schema had one link per number.
        assert [tuple(r) for r in rows] == [("111", True), ("222", False)]
    if backend == "sqlite":
        engine.dispose()
