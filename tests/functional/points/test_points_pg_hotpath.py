"""The ledger's PostgreSQL hot path (webapp.pgraw) on a real server: statements
sent straight through the session's psycopg connection still fail as SQLAlchemy's errors,
refuse what the Core path refuses, write the rows the Core path writes, and leave nothing
behind when they fail. The ledger invariants are checked after every test (pg_engine)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from points_pg import balance, rows, snapshot
from points_workload import T0
from sqlalchemy import Connection, Engine, exc, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.postgres import terminate
from webapp import db
from webapp import pgraw as pg
from webapp.points import admin, conversion, ledger, programs
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, Conflict, Refused
from webapp.points.ledger import DuplicateKey
from webapp.points.models import AccountKind, ProgramCategory

# The module, not the function `write` that webapp.points.ledger exports under its name.
# It imported credit_citizen by name: that is the reference to spy on.
write_module = importlib.import_module("webapp.points.ledger.write")

DIRECTORY = AnyMyKeyId()


def grant(s: Session, program_id: int, citizen: str, key: str, **kw: Any) -> programs.GrantResult:
    """programs.grant at T0 (unless `now` says otherwise) for any well-formed MyKey ID."""
    kw.setdefault("now", T0)
    return programs.grant(s, program_id, citizen, key=key, directory=DIRECTORY, **kw)


@pytest.fixture
def fused(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What each call of the fused credit (entries.credit_citizen, as `write` calls it)
    returned: (transfer id, account id, balance), None to fall back, or the exception.

    Grants here take `ledger.write` (the path of a grant inside a longer transaction or
    at a stricter isolation level): the grant as one statement of its own
    (webapp.points.grant_pg, tested in test_points_pg_grant_alone) is turned off."""
    monkeypatch.setattr(programs, "grant_alone", lambda *args, **kwargs: None)
    outcomes: list[object] = []
    real = write_module.credit_citizen

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            got = real(*args, **kwargs)
        except Exception as error:
            outcomes.append(error)
            raise
        outcomes.append(got)
        return got

    monkeypatch.setattr(write_module, "credit_citizen", spy)
    return outcomes


def test_first_grant_falls_back_and_the_next_takes_the_fused_path_with_the_same_rows(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], fused: list[object]
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering
        fused.clear()
        first = grant(s, vol.id, "ALICE234", "g1")
        later = T0 + timedelta(days=1)
        second = grant(s, vol.id, "ALICE234", "g2", now=later)
    [account] = rows(pg_engine, "SELECT id, balance FROM points_accounts WHERE owner = 'ALICE234'")
    assert account["balance"] == 1000
    # No account at first: the statement changed nothing and the general path opened it.
    assert fused == [None, (second.transfer_id, account["id"], 1000)]
    assert (first.balance, second.balance) == (500, 1000)
    assert (first.expires_at, second.expires_at) == (
        T0 + timedelta(days=180),
        later + timedelta(days=180),
    )

    t1, t2 = rows(pg_engine, "SELECT * FROM points_transfers WHERE kind = 'grant' ORDER BY id")
    assert [t1["id"], t2["id"]] == [first.transfer_id, second.transfer_id]
    expected = {
        "municipality_id": city.muni.id,
        "kind": "grant",
        "status": "posted",
        "debit_account_id": vol.account_id,
        "credit_account_id": account["id"],
        "amount": 500,
        "program_id": vol.id,
        "reversal_of": None,
        "pending_id": None,
        "hold_until": None,
        "debit_balance": None,
    }
    for t, key, running, now in ((t1, "g1", 500, T0), (t2, "g2", 1000, later)):
        assert {c: t[c] for c in expected} == expected
        assert (t["idempotency_key"], t["credit_balance"], t["created_at"]) == (
            f"grant:{key}",
            running,
            now,
        )
    varying = {"id", "idempotency_key", "credit_balance", "created_at"}
    assert {c: v for c, v in t1.items() if c not in varying} == {
        c: v for c, v in t2.items() if c not in varying
    }  # every other column, payload hash included, written alike by both paths

    lots = rows(pg_engine, "SELECT * FROM points_lots ORDER BY id")
    assert [{c: v for c, v in lot.items() if c != "id"} for lot in lots] == [
        {
            "account_id": account["id"],
            "transfer_id": t["id"],
            "amount": 500,
            "remaining": 500,
            "expires_at": now + timedelta(days=180),
        }
        for t, now in ((t1, T0), (t2, later))
    ]
    assert (
        balance(pg_engine, vol.account_id) == 100_000 - 1000
    )  # the deferred update went with each COMMIT


def test_a_replayed_key_on_the_fused_path_answers_with_the_first_grant(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], fused: list[object]
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering.id
        for citizen in ("ALICE234", "BOB23456"):  # accounts exist: every grant below is fused
            grant(s, vol, citizen, f"open-{citizen}")
        first = grant(s, vol, "ALICE234", "g1")
        fused.clear()
        before = snapshot(pg_engine)

        again = grant(s, vol, "ALICE234", "g1", now=T0 + timedelta(hours=1))
        assert again == dataclasses.replace(first, replayed=True)

        with pytest.raises(Conflict) as refused:
            grant(s, vol, "BOB23456", "g1")  # the same key for another citizen
        assert refused.value.code is Code.IDEMPOTENCY_CONFLICT

    assert snapshot(pg_engine) == before
    assert len(fused) == 2
    for taken in fused:  # the fused statement hit the unique key, raised as SQLAlchemy does
        assert isinstance(taken, DuplicateKey)
        assert isinstance(taken.__cause__, exc.IntegrityError)
        assert isinstance(taken.__cause__.orig, psycopg.errors.UniqueViolation)


@pytest.mark.parametrize("has_account", [True, False], ids=["fused", "fallback"])
def test_a_budget_smaller_than_a_grant_is_refused_at_commit_and_writes_nothing(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], fused: list[object], has_account: bool
) -> None:
    with pg_sessions() as s:
        city = build_city(s, budget=400, now=T0)  # a volunteering grant is 500
        vol = city.volunteering
        if has_account:
            ledger.open_account(s, city.muni.id, AccountKind.CITIZEN, "ALICE234", T0)
            s.commit()
        fused.clear()
        before = snapshot(pg_engine)

        with pytest.raises(Refused) as refused:
            grant(s, vol.id, "ALICE234", "g1")
        assert refused.value.code is Code.BUDGET_EXHAUSTED
        # The CHECK on the budget row failed the UPDATE sent with the COMMIT.
        cause = refused.value.__cause__
        assert isinstance(cause, exc.IntegrityError)
        assert isinstance(cause.orig, psycopg.errors.CheckViolation)
        assert not cause.connection_invalidated
        if has_account:  # the citizen, transfer and lot were written, then rolled back
            assert len(fused) == 1 and isinstance(fused[0], tuple)
        else:
            assert fused == [None]
        assert snapshot(pg_engine) == before

        # The same session goes on: with the budget topped up to one grant, it is granted.
        programs.fund(s, vol.id, 100, key="top-up", now=T0)
        assert grant(s, vol.id, "ALICE234", "g1").balance == 500
    assert balance(pg_engine, vol.account_id) == 0


@pytest.mark.parametrize(
    "caps",
    [{"cap_grants_per_citizen": 1}, {"cap_points_per_citizen": 500}],
    ids=["grants", "points"],
)
def test_per_citizen_caps_hold_on_the_fused_path(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    fused: list[object],
    caps: dict[str, int],
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        capped = programs.create_program(
            s, city.muni.id, "CAP", "上限つき事業", ProgramCategory.VOLUNTEERING,
            points_per_grant=500, expiry_days=30, budget=10_000, now=T0, **caps,
        )  # fmt: skip
        grant(s, city.volunteering.id, "ALICE234", "open")  # the account exists
        fused.clear()
        assert grant(s, capped.id, "ALICE234", "c1").balance == 1000
        before = snapshot(pg_engine)

        with pytest.raises(Refused) as refused:
            grant(s, capped.id, "ALICE234", "c2")
        assert refused.value.code is Code.CAP_REACHED
        assert snapshot(pg_engine) == before
        assert [type(o) for o in fused] == [tuple, tuple]  # both grants were fused

        assert grant(s, capped.id, "BOB23456", "c3").balance == 500  # a cap per citizen
    totals = rows(
        pg_engine,
        "SELECT a.owner, t.points, t.grants FROM points_program_citizen_totals t"
        " JOIN points_accounts a ON a.id = t.account_id WHERE t.program_id = :p ORDER BY 1",
        p=capped.id,
    )
    assert totals == [
        {"owner": "ALICE234", "points": 500, "grants": 1},
        {"owner": "BOB23456", "points": 500, "grants": 1},
    ]


def test_a_conversion_posted_at_once_is_fused_and_records_its_transfer(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], fused: list[object]
) -> None:
    """One posting from the partner's account with no hold: the fused path, whose
    `on_written` callback (the conversion's own row) sees the transfer as written."""
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        admin.set_terms(
            s, city.muni.id, city.partner.id, rate=(1, 1), bonus_bp=0, min_unit=100,
            hold_days=0, expiry_days=365, now=T0,
        )  # fmt: skip
        grant(s, city.volunteering.id, "ALICE234", "open")  # the account exists
        fused.clear()
        done = conversion.convert(
            s, city.partner, municipality_code=city.muni.code, citizen="ALICE234",
            partner_points=1000, ref="R1", directory=DIRECTORY, now=T0,
        )  # fmt: skip
        assert (done.status, done.base_points, done.bonus_points) == ("posted", 1000, 0)
    [outcome] = fused
    assert isinstance(outcome, tuple)
    transfer_id, account_id, after = outcome
    assert after == balance(pg_engine, account_id) == 1500
    [record] = rows(
        pg_engine, "SELECT citizen_account_id, base_transfer_id FROM points_conversions"
    )
    assert record == {"citizen_account_id": account_id, "base_transfer_id": transfer_id}
    [lot] = rows(pg_engine, "SELECT * FROM points_lots WHERE transfer_id = :t", t=transfer_id)
    assert (lot["account_id"], lot["amount"], lot["remaining"], lot["expires_at"]) == (
        account_id,
        1000,
        1000,
        T0 + timedelta(days=365),
    )


def _killing(server: Engine, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real` (its first argument a pg.Raw), run once the Raw's backend is terminated."""

    def wrapper(raw: pg.Raw, *args: Any, **kwargs: Any) -> Any:
        terminate(server, raw.dbapi.info.backend_pid)
        return real(raw, *args, **kwargs)

    return wrapper


@pytest.mark.parametrize("where", ["fused-statement", "commit"])
def test_a_connection_lost_mid_transaction_surfaces_as_a_disconnect_and_commits_nothing(
    pg_admin: Engine,
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    fused: list[object],
    where: str,
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering.id
        grant(s, vol, "ALICE234", "open")  # the account exists: the next grant is fused
        before = snapshot(pg_engine)
        # The transaction has begun (program terms read) when the backend goes away.
        if where == "fused-statement":
            killing = _killing(pg_admin, write_module.credit_citizen)
            monkeypatch.setattr(write_module, "credit_citizen", killing)
        else:
            killing = _killing(pg_admin, pg.Raw.run_then_commit)
            monkeypatch.setattr(pg.Raw, "run_then_commit", killing)

        with pytest.raises(exc.DBAPIError) as caught:
            grant(s, vol, "ALICE234", "g1")
        monkeypatch.undo()
        assert isinstance(caught.value, exc.OperationalError)
        assert isinstance(caught.value.orig, psycopg.OperationalError)
        assert caught.value.connection_invalidated
        # Raw's own error (its statement in psycopg's spelling), not one raised by the
        # rollback after it: Raw invalidated the connection, so the rollback sent nothing.
        assert "%(" in str(caught.value.statement)

    assert snapshot(pg_engine) == before
    with pg_sessions() as fresh:  # the same engine: the dead connection was discarded
        assert grant(fresh, vol, "ALICE234", "g1").balance == 1000  # the retry, same key


def _core(connection: Connection) -> None:
    connection.execute(text("SELECT 1"))


def _raw(connection: Connection) -> None:
    raw = pg.connection(connection)
    assert raw is not None
    raw.row("SELECT 1", {})


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(_core, id="core"),
        pytest.param(_raw, id="raw"),
    ],
)
def test_a_disconnect_retires_the_pools_older_connections(
    pg_admin: Engine,
    pg_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    first: Callable[[Connection], None],
) -> None:
    """A server restart under load: the first statement to fail, on either path, makes the
    engine drop every connection older than it (webapp.db.make_engine counts on this for
    connections too recently used to be pinged), so only one request pays for it."""
    monkeypatch.setattr(db, "time", SimpleNamespace(monotonic=lambda: 1000.0))  # no pings
    a, b = pg_engine.connect(), pg_engine.connect()
    pids = [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in (a, b)]
    a.rollback()
    b.close()  # idle in the pool, back moments ago
    for pid in pids:
        terminate(pg_admin, pid)
    with pytest.raises(exc.DBAPIError) as caught:
        first(a)
    assert caught.value.connection_invalidated
    a.close()
    with pg_engine.connect() as c:  # b's turn (the pool is first in, first out)
        assert c.execute(text("SELECT 1")).scalar_one() == 1


@pytest.mark.parametrize(
    ("sql", "error", "orig"),
    [
        ("SELECT 1/0", exc.DataError, psycopg.errors.DivisionByZero),
        ("SELECT nope FROM points_accounts", exc.ProgrammingError, psycopg.errors.UndefinedColumn),
        (
            "INSERT INTO points_accounts (municipality_id) VALUES (NULL)",
            exc.IntegrityError,
            psycopg.errors.NotNullViolation,
        ),
    ],
    ids=["data", "programming", "integrity"],
)
@pytest.mark.parametrize("method", ["row", "one"])
def test_raw_statement_errors_are_sqlalchemy_errors(
    pg_sessions: sessionmaker[Session],
    sql: str,
    error: type[exc.DBAPIError],
    orig: type[psycopg.Error],
    method: str,
) -> None:
    with pg_sessions() as s:
        raw = pg.connection(s.connection())
        assert raw is not None
        with pytest.raises(error) as caught:
            getattr(raw, method)(sql, {})
        assert isinstance(caught.value.orig, orig)
        assert caught.value.statement == sql
        assert not caught.value.connection_invalidated
        pid = raw.dbapi.info.backend_pid
        s.rollback()
        # Not a disconnect: the connection is kept, and works once rolled back.
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid
