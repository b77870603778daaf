"""Identity test fixtures: an app over a fresh SQLite file, a session, row factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from webapp import create_app, db
from webapp import identity as identity_pkg
from webapp.providers.models import Provider, ProviderKind


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """The platform app with the identity tables, on a database file of its own."""
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}", "SECRET_KEY": "test", "TESTING": True}
    )
    identity_pkg.init_app(app)
    db.create_all(app)
    return app


@pytest.fixture
def s(app: Flask) -> Iterator[Session]:
    """A database session inside an app context."""
    with app.app_context():
        yield db.session()


@pytest.fixture
def make_provider(s: Session) -> Any:
    """Factory: a provider row with a digits-only rule by default."""
    counter = iter(range(1, 10_000))

    def make(**fields: Any) -> Provider:
        n = next(counter)
        values: dict[str, Any] = {
            "code": f"JP-{1000000 + n}",
            "kind": ProviderKind.LIBRARY,
            "name_ja": f"図書館{n}",
            "name_en": f"Library {n}",
            "terms_ja": "規約",
            "terms_version": 1,
            "number_rule": {"min_length": 4, "max_length": 12},
            "counter_settings": {"mode": "A"},
        }
        values.update(fields)
        provider = Provider(**values)
        s.add(provider)
        s.commit()
        return provider

    return make
