"""Alembic environment: one migration history for every domain's tables.

The database URL comes from `-x url=...`, else ICHIMAI_DATABASE_URL, else the platform's
default (the SQLite file in instance/). Tests may pass an open connection instead, as
`config.attributes["connection"]`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from webapp import config as settings
from webapp.db import Base

# ---------------------------------------------------------------------------------------
# MODEL REGISTRY: every domain's models module, so that Base.metadata knows its tables.
# A domain adding tables appends its module here (and adds a migration under versions/).
MODEL_MODULES = [
    "webapp.providers.models",
    "webapp.identity.models",
    "webapp.staff.models",
    "webapp.terminals.models",
    "webapp.points.models",
]
# ---------------------------------------------------------------------------------------
for module in MODEL_MODULES:
    importlib.import_module(module)

target_metadata = Base.metadata
REPO = Path(__file__).resolve().parents[2]


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    return str(settings.from_environment(str(REPO / "instance"))["DATABASE_URL"])


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Compare only the tables of registered domains: a table of a domain not yet in the
    # registry is neither dropped nor reported by autogenerate.
    if type_ == "table":
        return name in target_metadata.tables
    return True


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        compare_type=True,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection, or on a new engine for the URL."""
    given = context.config.attributes.get("connection")
    if given is not None:
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
