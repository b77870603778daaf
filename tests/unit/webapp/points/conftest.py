"""Points test fixtures: an app over a fresh SQLite file, a small world, and the invariant
checker that runs after every test of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from webapp import create_app, db
from webapp import points as points_pkg
from webapp.db import Base
from webapp.points import invariants
from webapp.points.demo import City, build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import POINTS_TABLES

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
CITIZENS = {"ALICE234", "BOB23456", "CAROL789", "DAVE2345"}


@pytest.fixture
def t0() -> datetime:
    """The tests' clock: 2025-04-01 09:00 UTC."""
    return T0


@pytest.fixture
def directory() -> KnownMyKeyIds:
    """The MyKey IDs that exist in these tests."""
    return KnownMyKeyIds(set(CITIZENS))


@pytest.fixture
def app(tmp_path: Path, directory: KnownMyKeyIds) -> Flask:
    """The platform app with the points tables and API, on a database file of its own."""
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'points.db'}", "SECRET_KEY": "t", "TESTING": True}
    )
    app.extensions["points_directory"] = directory
    if "points_api" not in app.blueprints:  # until create_app wires webapp.points itself
        points_pkg.init_app(app)
    Base.metadata.create_all(app.extensions["db_engine"], tables=POINTS_TABLES)
    return app


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    """A database session inside an app context; invariants are checked after the test."""
    with app.app_context():
        session = db.session()
        yield session
        session.rollback()
        with db.new_session() as audit:
            assert invariants.violations(audit) == {}


@pytest.fixture
def world(s: Session) -> City:
    """Test city 011002: budgets of 100,000 points, rate 1:1, bonus 10 %, a museum."""
    return build_city(s, now=T0)
