"""The tenancy walk (tests/unit/webapp/tenancy/test_tenancy_walk.py) on PostgreSQL: a
municipal administrator of A, every admin route aimed at B, B's rows unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PG_URL, server_engine
from tests.unit.webapp.tenancy.test_tenancy_walk import World, build_world, walk
from webapp.scaled import scratch_database


@pytest.fixture
def pg_world() -> Iterator[World]:
    with server_engine():
        pass  # skips (or fails under CI) when PostgreSQL does not answer
    with scratch_database(PG_URL) as url:
        world = build_world(url)
        try:
            yield world
        finally:
            world.app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("login", ["a.admin", "a.provider"])
def test_nobody_outside_b_changes_bs_anything_on_postgresql(pg_world: World, login: str) -> None:
    walk(pg_world, login)
