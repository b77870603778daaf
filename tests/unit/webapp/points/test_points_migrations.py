"""The Alembic history builds exactly the points tables of the models (SQLite)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from webapp.db import Base, make_engine
from webapp.points.models import POINTS_TABLES

REPO = Path(__file__).resolve().parents[4]
NAMES = {t.name for t in POINTS_TABLES}


def points_only(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    """Compare the points tables only (other domains' models may be loaded in this process)."""
    return type_ != "table" or name in NAMES


def upgrade_and_diff(engine: Engine) -> list[object]:
    """Run every migration on `engine`, then diff the database against the models."""
    config = Config(str(REPO / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": points_only, "compare_type": True}
        )
        return list(compare_metadata(context, Base.metadata))


def downgrade(engine: Engine) -> None:
    """Run every downgrade."""
    config = Config(str(REPO / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")


def test_sqlite_upgrade_matches_models_and_downgrades(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert upgrade_and_diff(engine) == []
    assert set(inspect(engine).get_table_names()) >= NAMES
    downgrade(engine)
    assert not NAMES & set(inspect(engine).get_table_names())
    engine.dispose()
