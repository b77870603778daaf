"""Shared pytest configuration: fixture modules live in tests/fixtures/, one per area."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.jlis",
    "tests.fixtures.cards",
    "tests.fixtures.pcsc",
    "tests.fixtures.sip2",
]

# Timing is never a pass/fail criterion here (a loaded 2-core CI machine is slow);
# hypothesis' per-example deadline would turn load into flaky failures.
settings.register_profile(
    "ichimai", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ichimai")


def pytest_addoption(parser: pytest.Parser) -> None:
    """--deployment: what the end-to-end tests run the platform as."""
    parser.addoption(
        "--deployment",
        choices=("embedded", "scaled"),
        default=os.environ.get("ICHIMAI_E2E_DEPLOYMENT", "embedded"),
        help=(
            "embedded: one process, SQLite, the in-process bus (default); scaled: gunicorn "
            "with 4 gevent workers, PostgreSQL and Redis (env ICHIMAI_E2E_DEPLOYMENT)"
        ),
    )


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest) -> str:
    """The deployment the end-to-end tests run the platform as (--deployment); the scaled
    one needs PostgreSQL and Redis (skipped without them, failed under CI)."""
    chosen = str(request.config.getoption("--deployment"))
    if chosen == "scaled":
        from tests.support.postgres import server_engine
        from tests.support.services import REDIS_URL, redis_up

        with server_engine():
            pass  # skips (or fails under CI) when PostgreSQL does not answer
        if not redis_up():
            message = f"Redis unreachable at {REDIS_URL}: the scaled deployment needs it"
            if os.environ.get("CI") == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    return chosen
