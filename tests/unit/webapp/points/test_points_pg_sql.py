"""`webapp.pgraw`: the `:name` SQL of `text()` respelt for psycopg, and the hot
path left to Core on any other database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from webapp import pgraw as pg


@pytest.mark.parametrize(
    ("sql", "psycopg"),
    [
        ("SELECT :a", "SELECT %(a)s"),
        ("a=:b AND c = :c_2", "a=%(b)s AND c = %(c_2)s"),
        ("VALUES (:a, :b)", "VALUES (%(a)s, %(b)s)"),
        ("SELECT :a::text", "SELECT %(a)s::text"),
        ("SELECT x::text, y::timestamptz", "SELECT x::text, y::timestamptz"),
        ("SELECT CAST(:a AS text)::int", "SELECT CAST(%(a)s AS text)::int"),
        ("WHERE t = '12:30'", "WHERE t = '12:30'"),
        ("WHERE code LIKE 'A%' AND id = :id", "WHERE code LIKE 'A%%' AND id = %(id)s"),
        ("SELECT 7 % 2", "SELECT 7 %% 2"),
        ("SELECT '%(a)s'", "SELECT '%%(a)s'"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_psycopg_sql(sql: str, psycopg: str) -> None:
    assert pg.psycopg_sql(sql) == psycopg


def test_no_hot_path_off_postgresql() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        assert pg.connection(connection) is None
    engine.dispose()
