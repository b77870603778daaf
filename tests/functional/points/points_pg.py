"""PostgreSQL helpers of the points functional tests (imported by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from webapp.db import Base
from webapp.points.models import POINTS_TABLES

PG_URL = os.environ.get("ICHIMAI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[3]
NAMES = {t.name for t in POINTS_TABLES}
# What the ledger writes: the tables a refused request must leave as they were.
LEDGER_TABLES = (
    "points_accounts",
    "points_transfers",
    "points_lots",
    "points_lot_moves",
    "points_open_holds",
    "points_program_citizen_totals",
)


def schema_url(schema: str) -> str:
    """PG_URL with the search path set to `schema` (each connection lands there)."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def _points_only(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    return type_ != "table" or name in NAMES


def migrate(engine: Engine, target: str) -> None:
    """Run Alembic up to `target` ("head") or down to it ("base") on `engine`."""
    config = Config(str(REPO / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        if target == "base":
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)


def diff(engine: Engine) -> list[object]:
    """Differences between the database and the points models (none expected)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": _points_only, "compare_type": True}
        )
        return list(compare_metadata(context, Base.metadata))


def rows(engine: Engine, sql: str, **params: object) -> list[dict[str, Any]]:
    """The rows of `sql`, read on a connection of their own, as dicts."""
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(text(sql), params).mappings()]


def balance(engine: Engine, account_id: int) -> int:
    """An account's balance, read on a connection of its own."""
    [row] = rows(engine, "SELECT balance FROM points_accounts WHERE id = :i", i=account_id)
    return int(row["balance"])


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the ledger writes, table by table (to show a refusal wrote nothing)."""
    return {t: rows(engine, f"SELECT * FROM {t} ORDER BY 1, 2") for t in LEDGER_TABLES}  # noqa: S608
