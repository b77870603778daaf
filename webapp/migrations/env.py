"""Alembic environment: one migration history for every domain's tables.

The database URL comes from `-x url=...`, else ICHIMAI_DATABASE_URL, else the platform's
default (the SQLite file in instance/). Tests may pass an open connection instead, as
`config.attributes["connection"]`.

From the command line (`alembic upgrade head`) it logs as alembic.ini says: each migration
it runs, then which database it left at which revision (password hidden), so an
operator sees what it did (and that there was nothing to do).
"""

from __future__ import annotations

import importlib
import logging
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.engine import make_url

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
    "webapp.sessions.models",
    "webapp.sip2.models",
]
# ---------------------------------------------------------------------------------------
for module in MODEL_MODULES:
    importlib.import_module(module)

target_metadata = Base.metadata
REPO = Path(__file__).resolve().parents[2]
log = logging.getLogger("alembic.env")
if context.config.config_file_name and "connection" not in context.config.attributes:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


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
    url = _url()
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        heads = context.get_context().get_current_heads()
    engine.dispose()
    shown = make_url(url).render_as_string(hide_password=True)
    log.info("database %s is at %s", shown, ", ".join(heads) or "no revision (empty)")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
