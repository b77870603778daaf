"""Provider test fixtures: an app over a fresh SQLite file and a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from webapp import create_app, db
from webapp.providers import models  # noqa: F401  (registers the providers table)


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The platform app on a database file of its own."""
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}", "SECRET_KEY": "test", "TESTING": True}
    )
    db.create_all(app)
    return app


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    """A database session inside an app context."""
    with app.app_context():
        yield db.session()
