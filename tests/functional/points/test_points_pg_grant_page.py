"""The staff grant page on PostgreSQL: the form's grant is written by the one statement
(webapp.points.grant_pg), not the general path, because the page ends its reads'
transaction first; a replayed form answers with the first grant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from points_pg import balance, rows, schema_url
from points_workload import T0
from sqlalchemy import Engine

from tests.support.forms import csrf_token, grant_key
from webapp import create_app, db
from webapp.points import ledger, programs
from webapp.points.demo import build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.grant_pg import OneGrant
from webapp.points.models import AccountKind
from webapp.staff import services as staff_services
from webapp.staff.models import Role

PASSWORD = "correct horse battery"


@pytest.fixture
def app(pg_schema: str) -> Iterator[Flask]:
    """The fully wired app on the test's PostgreSQL schema (every table)."""
    app = create_app(
        {
            "DATABASE_URL": schema_url(pg_schema),
            "SECRET_KEY": "t",
            "TESTING": True,
            "BUS_URL": "memory://",
        }
    )
    app.extensions["points_directory"] = KnownMyKeyIds({"ALICE234"})
    db.create_all(app)
    yield app
    app.extensions["db_engine"].dispose()


def test_a_grant_from_the_page_is_one_statement(
    app: Flask, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes: list[object] = []
    real = programs.grant_alone

    def spy(*args: Any, **kwargs: Any) -> OneGrant | None:
        outcomes.append(real(*args, **kwargs))
        return outcomes[-1]  # type: ignore[return-value]

    monkeypatch.setattr(programs, "grant_alone", spy)
    with app.extensions["db_sessionmaker"]() as s:
        city = build_city(s, now=T0)
        account = ledger.open_account(s, city.muni.id, AccountKind.CITIZEN, "ALICE234", T0)
        staff_services.create_staff(
            s, "officer", PASSWORD, Role.POINTS_OFFICER, municipality_id=city.muni.id
        )
        s.commit()
        account_id, program = account.id, city.volunteering
    client: FlaskClient = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    signed_in = client.post(
        "/staff/login",
        data={"login": "officer", "password": PASSWORD, "csrf_token": csrf_token(page)},
    )
    assert signed_in.status_code == 302

    page = client.get("/points/grants").get_data(as_text=True)
    form = {
        "csrf_token": csrf_token(page),
        "key": grant_key(page),
        "mykey_id": "alice234",
        "program_id": str(program.id),
    }
    first = client.post("/points/grants", data=form)
    again = client.post("/points/grants", data=form)  # the same form sent twice

    assert first.status_code == again.status_code == 200
    assert "ALICE234" in first.get_data(as_text=True)
    [written, replayed] = outcomes
    assert isinstance(written, OneGrant) and replayed is None  # the replay: general path
    assert balance(pg_engine, account_id) == 500
    grants = rows(pg_engine, "SELECT id FROM points_transfers WHERE kind = 'grant'")
    assert grants == [{"id": written.transfer_id}]
    assert balance(pg_engine, program.account_id) == 100_000 - 500
