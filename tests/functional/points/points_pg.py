"""PostgreSQL helpers of the points functional tests (imported by conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from webapp.db import Base
from webapp.points.models import POINTS_TABLES

PG_URL = os.environ.get("ICHIMAI_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[3]
NAMES = {t.name for t in POINTS_TABLES}


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
