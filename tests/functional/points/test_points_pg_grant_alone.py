"""A staff grant on PostgreSQL as one statement of its own (webapp.points.grant_pg), on a
real server. It proves that the statement:

- writes exactly the rows the general path (`ledger.run` with `ledger.write`) writes;
- writes nothing whenever the grant must be refused, replayed, capped or needs a new
  account, and then the general path gives the same answers as before (the reason, the
  first result, the cap, the opened account);
- is used only when the grant is the whole transaction at the server's default isolation;
- leaves the session's connection in ordinary (non-autocommit) transactions afterwards;
- surfaces a lost connection as SQLAlchemy's disconnect, having written nothing;
- keeps the books right under concurrent grants and a race for the last of a budget.

Which path ran is seen by spying on `programs.grant_alone` (programs imported it by
name). The ledger invariants are checked after every test (the pg_engine fixture).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from points_pg import balance, rows, schema_url, snapshot
from points_workload import T0
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, exc, text
from sqlalchemy.orm import Session, sessionmaker

from tests.support.postgres import terminate
from webapp import db
from webapp import pglane as lane
from webapp import pgraw as pg
from webapp.db import make_engine
from webapp.identity.models import MyKeyID
from webapp.points import grant_pg, ledger, programs
from webapp.points.demo import City, build_city
from webapp.points.directory import AnyMyKeyId, IdentityDirectory, KnownMyKeyIds
from webapp.points.errors import Code, Conflict, NotFound, PointsError, Refused
from webapp.points.grant_pg import OneGrant
from webapp.points.models import Account, AccountKind, ProgramCategory, table
from webapp.points.validation import payload_hash

DIRECTORY = AnyMyKeyId()
EXPIRES = T0 + timedelta(days=180)  # a volunteering grant made at T0 (build_city)


# --- helpers -------------------------------------------------------------------------


def grant(s: Session, program_id: int, citizen: str, key: str, **kw: Any) -> programs.GrantResult:
    """programs.grant at T0 (unless `now` says otherwise), any well-formed MyKey ID known
    (unless `directory` says otherwise)."""
    kw.setdefault("now", T0)
    kw.setdefault("directory", DIRECTORY)
    return programs.grant(s, program_id, citizen, key=key, **kw)


def open_accounts(s: Session, municipality_id: int, citizens: list[str]) -> dict[str, int]:
    """Empty citizen accounts (committed): a grant to them may take the one statement."""
    ids = {
        c: ledger.open_account(s, municipality_id, AccountKind.CITIZEN, c, T0).id for c in citizens
    }
    s.commit()
    return ids


def without(row: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    """`row` less `columns`."""
    return {c: v for c, v in row.items() if c not in columns}


class Spy:
    """Wraps grant_pg.grant_alone: what each call returned (a OneGrant, or None for the
    general path) or raised. Wraps pg.Raw.row too, for the grant's own statement only:
    the psycopg connection it ran on, and that connection's transaction status just after
    it. Neither touches the session. With `general_only`, grant_alone is not called:
    None, as if it could not write."""

    def __init__(self) -> None:
        self.real = grant_pg.grant_alone
        self.real_row = pg.Raw.row
        self.outcomes: list[object] = []
        self.connections: list[psycopg.Connection[Any]] = []
        self.statuses: list[TransactionStatus] = []
        self.general_only = False

    def __call__(self, *args: Any, **kwargs: Any) -> OneGrant | None:
        if self.general_only:
            return None
        try:
            got = self.real(*args, **kwargs)
        except Exception as error:
            self.outcomes.append(error)
            raise
        self.outcomes.append(got)
        return got

    def row(self, raw: pg.Raw, sql: str, params: dict[str, Any]) -> Any:
        if sql != grant_pg._GRANT:
            return self.real_row(raw, sql, params)
        self.connections.append(raw.dbapi)
        try:
            return self.real_row(raw, sql, params)
        finally:
            if not raw.dbapi.closed:
                self.statuses.append(raw.dbapi.info.transaction_status)

    def clear(self) -> None:
        self.outcomes.clear()
        self.connections.clear()
        self.statuses.clear()

    def paths(self) -> list[str]:
        """'one' for each grant the statement wrote, 'general' for each it left alone."""
        return ["one" if isinstance(o, OneGrant) else "general" for o in self.outcomes]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    spy = Spy()
    monkeypatch.setattr(programs, "grant_alone", spy)

    def row(raw: pg.Raw, sql: str, params: dict[str, Any]) -> Any:
        return spy.row(raw, sql, params)

    monkeypatch.setattr(pg.Raw, "row", row)
    return spy


@pytest.fixture
def grant_log(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The errors after which grant_alone left the grant to the general path."""
    caplog.set_level(logging.DEBUG, logger=grant_pg.__name__)

    def errors() -> list[str]:
        return [str(r.args[0]) for r in caplog.records if r.name == grant_pg.__name__]

    return errors


# --- 1. the same rows as the general path --------------------------------------------


def test_the_statement_writes_the_rows_the_general_path_writes(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering
        accounts = open_accounts(s, city.muni.id, ["ALICE234", "BOB23456"])
        spy.clear()
        one = grant(s, vol.id, "ALICE234", "a1", municipality_id=city.muni.id)
        spy.general_only = True  # BOB's grant: ledger.run and ledger.write
        general = grant(s, vol.id, "BOB23456", "b1", municipality_id=city.muni.id)
    assert spy.outcomes == [OneGrant(one.transfer_id, "VOL", 500, EXPIRES, 500)]
    # Its own transaction: over when grant_alone returned, before the session's commit.
    assert spy.statuses == [TransactionStatus.IDLE]

    # What staff see: alike but for the transfer and the citizen.
    expected = {
        "program_code": "VOL",
        "points": 500,
        "expires_at": EXPIRES,
        "balance": 500,
        "replayed": False,
    }
    per_grant = {"transfer_id", "mykey_id"}
    assert without(dataclasses.asdict(one), per_grant) == expected
    assert without(dataclasses.asdict(general), per_grant) == expected
    assert (one.mykey_id, general.mykey_id) == ("ALICE234", "BOB23456")

    # The transfers: every column alike but those of one grant (id, key, citizen, hash).
    transfers = rows(pg_engine, "SELECT * FROM points_transfers WHERE kind = 'grant'")
    by_key = {t["idempotency_key"]: t for t in transfers}
    assert set(by_key) == {"grant:a1", "grant:b1"}
    per_transfer = {"id", "idempotency_key", "credit_account_id", "payload_hash"}
    shared = {
        "municipality_id": city.muni.id,
        "kind": "grant",
        "status": "posted",
        "debit_account_id": vol.account_id,
        "amount": 500,
        "reversal_of": None,
        "pending_id": None,
        "program_id": vol.id,
        "hold_until": None,
        "debit_balance": None,  # the shared budget's running balance is not kept
        "credit_balance": 500,
        "created_at": T0,
    }
    for key, result, citizen in (("a1", one, "ALICE234"), ("b1", general, "BOB23456")):
        t = by_key[f"grant:{key}"]
        assert without(t, per_transfer) == shared
        assert (t["id"], t["credit_account_id"], t["payload_hash"]) == (
            result.transfer_id,
            accounts[citizen],
            payload_hash({"op": "grant", "program": vol.id, "mykey_id": citizen}),
        )

    # The lots: one per grant, alike but for whose and which transfer.
    lots = {
        lot["transfer_id"]: lot
        for lot in rows(pg_engine, "SELECT * FROM points_lots")  # nothing else opens lots
    }
    assert set(lots) == {one.transfer_id, general.transfer_id}
    for result, citizen in ((one, "ALICE234"), (general, "BOB23456")):
        lot = lots[result.transfer_id]
        assert without(lot, {"id"}) == {
            "account_id": accounts[citizen],
            "transfer_id": result.transfer_id,
            "amount": 500,
            "remaining": 500,
            "expires_at": EXPIRES,
        }

    assert balance(pg_engine, accounts["ALICE234"]) == balance(pg_engine, accounts["BOB23456"])
    assert balance(pg_engine, accounts["ALICE234"]) == 500
    assert balance(pg_engine, vol.account_id) == 100_000 - 1000  # both grants taken off
    assert rows(pg_engine, "SELECT * FROM points_program_citizen_totals") == []


def test_a_first_grant_opens_the_account_on_the_general_path_then_the_next_is_one_statement(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering
        spy.clear()
        first = grant(s, vol.id, "CAROL234", "c1")
        later = T0 + timedelta(days=1)
        second = grant(s, vol.id, "CAROL234", "c2", now=later)
    [account] = rows(pg_engine, "SELECT id, balance FROM points_accounts WHERE owner = 'CAROL234'")
    assert account["balance"] == 1000
    # No account at first: the statement wrote nothing and the general path opened it.
    assert spy.outcomes == [
        None,
        OneGrant(second.transfer_id, "VOL", 500, later + timedelta(days=180), 1000),
    ]
    assert (first.balance, second.balance) == (500, 1000)
    credited = rows(
        pg_engine,
        "SELECT id, credit_account_id, credit_balance FROM points_transfers"
        " WHERE kind = 'grant' ORDER BY id",
    )
    assert credited == [
        {"id": first.transfer_id, "credit_account_id": account["id"], "credit_balance": 500},
        {"id": second.transfer_id, "credit_account_id": account["id"], "credit_balance": 1000},
    ]
    assert balance(pg_engine, vol.account_id) == 100_000 - 1000


def test_a_program_within_its_dates_is_one_statement(
    pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering
        vol.starts_at, vol.ends_at = T0, T0 + timedelta(seconds=1)  # start inclusive
        s.commit()
        open_accounts(s, city.muni.id, ["ALICE234"])
        spy.clear()
        grant(s, vol.id, "ALICE234", "d1")
    assert spy.paths() == ["one"]


# --- 2. refusals: the statement writes nothing, the general path gives the reason ----


def _unknown_program(s: Session, city: City) -> dict[str, Any]:
    return {"program_id": 999_999}


def _inactive(s: Session, city: City) -> dict[str, Any]:
    city.volunteering.active = False
    s.commit()
    return {}


def _not_started(s: Session, city: City) -> dict[str, Any]:
    city.volunteering.starts_at = T0 + timedelta(seconds=1)
    s.commit()
    return {}


def _ended(s: Session, city: City) -> dict[str, Any]:
    city.volunteering.ends_at = T0  # the end is exclusive: T0 is past it
    s.commit()
    return {}


def _partner_bonus(s: Session, city: City) -> dict[str, Any]:
    return {"program_id": city.bonus.id}


def _other_municipality(s: Session, city: City) -> dict[str, Any]:
    """A staff member of another city, where the citizen has an account too."""
    other = build_city(s, "012025", partner_code="AIRLINE2", now=T0)
    open_accounts(s, other.muni.id, ["ALICE234"])
    return {"municipality_id": other.muni.id}


def _unknown_citizen(s: Session, city: City) -> dict[str, Any]:
    return {"directory": KnownMyKeyIds(set())}


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        pytest.param(_unknown_program, NotFound, Code.UNKNOWN_PROGRAM, id="unknown-program"),
        pytest.param(_inactive, Refused, Code.INACTIVE, id="inactive"),
        pytest.param(_not_started, Refused, Code.NOT_RUNNING, id="not-started"),
        pytest.param(_ended, Refused, Code.NOT_RUNNING, id="ended"),
        pytest.param(_partner_bonus, Refused, Code.NOT_ACCEPTED, id="partner-bonus"),
        pytest.param(_other_municipality, NotFound, Code.UNKNOWN_PROGRAM, id="other-city"),
        pytest.param(_unknown_citizen, NotFound, Code.UNKNOWN_CITIZEN, id="unknown-citizen"),
    ],
)
def test_a_refused_grant_writes_nothing_and_the_general_path_gives_the_reason(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    spy: Spy,
    case: Callable[[Session, City], dict[str, Any]],
    error: type[PointsError],
    code: Code,
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        open_accounts(s, city.muni.id, ["ALICE234"])  # a missing account is not the reason
        kw = {"program_id": city.volunteering.id, **case(s, city)}
        before = snapshot(pg_engine)
        spy.clear()
        with pytest.raises(error) as refused:
            grant(s, kw.pop("program_id"), "ALICE234", "g1", **kw)
        assert refused.value.code is code
    assert spy.outcomes == [None]
    assert snapshot(pg_engine) == before


@pytest.mark.parametrize(
    "caps",
    [{"cap_grants_per_citizen": 1}, {"cap_points_per_citizen": 500}],
    ids=["grants", "points"],
)
def test_a_capped_program_takes_the_general_path_and_the_cap_holds(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy, caps: dict[str, int]
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        capped = programs.create_program(
            s, city.muni.id, "CAP", "上限つき事業", ProgramCategory.VOLUNTEERING,
            points_per_grant=500, expiry_days=30, budget=10_000, now=T0, **caps,
        )  # fmt: skip
        capped_id = capped.id  # the refusal's rollback expires the loaded objects
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
        spy.clear()
        assert grant(s, capped_id, "ALICE234", "c1").balance == 500
        before = snapshot(pg_engine)
        with pytest.raises(Refused) as refused:
            grant(s, capped_id, "ALICE234", "c2")
        assert refused.value.code is Code.CAP_REACHED
    assert spy.outcomes == [None, None]
    assert snapshot(pg_engine) == before
    totals = rows(
        pg_engine,
        "SELECT account_id, points, grants FROM points_program_citizen_totals"
        " WHERE program_id = :p",
        p=capped_id,
    )
    assert totals == [{"account_id": accounts["ALICE234"], "points": 500, "grants": 1}]


# --- 3. an exhausted budget -----------------------------------------------------------


def test_a_budget_smaller_than_a_grant_fails_the_statement_and_is_refused(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    spy: Spy,
    grant_log: Callable[[], list[str]],
) -> None:
    with pg_sessions() as s:
        city = build_city(s, budget=400, now=T0)  # a volunteering grant is 500
        vol, budget = city.volunteering.id, city.volunteering.account_id
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
        before = snapshot(pg_engine)
        spy.clear()
        with pytest.raises(Refused) as refused:
            grant(s, vol, "ALICE234", "g1")
        assert refused.value.code is Code.BUDGET_EXHAUSTED
    assert spy.outcomes == [None]
    assert grant_log() == ["CheckViolation"]  # the budget's CHECK undid the statement
    assert snapshot(pg_engine) == before
    assert balance(pg_engine, accounts["ALICE234"]) == 0
    assert balance(pg_engine, budget) == 400


# --- 4. replays -----------------------------------------------------------------------


def test_a_replayed_key_answers_with_the_first_grant_and_writes_nothing(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    spy: Spy,
    grant_log: Callable[[], list[str]],
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering.id
        open_accounts(s, city.muni.id, ["ALICE234", "BOB23456"])
        spy.clear()
        first = grant(s, vol, "ALICE234", "g1")
        assert spy.paths() == ["one"]
        before = snapshot(pg_engine)
        spy.clear()

        again = grant(s, vol, "ALICE234", "g1", now=T0 + timedelta(hours=1))
        assert again == dataclasses.replace(first, replayed=True)
        with pytest.raises(Conflict) as refused:
            grant(s, vol, "BOB23456", "g1")  # the same key for another citizen
        assert refused.value.code is Code.IDEMPOTENCY_CONFLICT
    assert spy.outcomes == [None, None]
    assert grant_log() == ["UniqueViolation", "UniqueViolation"]  # the key was taken
    assert snapshot(pg_engine) == before


# --- 5. only when the grant is the whole transaction at the default isolation ---------


BOB = "SELECT 1 FROM points_accounts WHERE owner = 'BOB23456'"
RENAMED = "SELECT 1 FROM points_programs WHERE name = 'ボランティア（改）'"


def _select(s: Session, city: City) -> None:
    s.execute(text("SELECT 1"))  # a transaction is open on the connection


def _flushed(s: Session, city: City) -> None:
    ledger.open_account(s, city.muni.id, AccountKind.CITIZEN, "BOB23456", T0)


def _pending(s: Session, city: City) -> None:
    """An ORM object added, not yet flushed (nothing sent to the server yet)."""
    s.add(
        Account(
            municipality_id=city.muni.id, kind=AccountKind.CITIZEN.value, owner="BOB23456",
            balance=0, debits_pending=0, credits_pending=0, created_at=T0,
        )
    )  # fmt: skip


def _dirty(s: Session, city: City) -> None:
    """A loaded object changed, not yet flushed."""
    city.volunteering.name = "ボランティア（改）"


@pytest.mark.parametrize(
    ("before_grant", "committed", "count"),
    [
        pytest.param(_select, BOB, 0, id="select"),
        pytest.param(_flushed, BOB, 1, id="flushed"),
        pytest.param(_pending, BOB, 1, id="pending"),
        pytest.param(_dirty, RENAMED, 1, id="dirty"),
    ],
)
def test_not_used_when_the_session_has_work_under_way(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    spy: Spy,
    before_grant: Callable[[Session, City], None],
    committed: str,
    count: int,
) -> None:
    """The grant joins the session's transaction: the general path, committing both."""
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
        before_grant(s, city)
        spy.clear()
        assert grant(s, city.volunteering.id, "ALICE234", "g1").balance == 500
    assert spy.outcomes == [None]
    assert spy.connections == []  # the statement was not even sent
    assert balance(pg_engine, accounts["ALICE234"]) == 500
    assert len(rows(pg_engine, committed)) == count  # the work under way, with the grant


@pytest.mark.parametrize(
    ("isolation", "path"),
    [
        ("READ COMMITTED", "one"),
        ("REPEATABLE READ", "general"),
        ("SERIALIZABLE", "general"),
    ],
)
def test_used_only_at_read_committed(
    pg_engine: Engine, pg_schema: str, spy: Spy, isolation: str, path: str
) -> None:
    with Session(pg_engine, expire_on_commit=False) as s:
        city = build_city(s, now=T0)
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
    base = make_engine(schema_url(pg_schema))
    try:
        engine = base.execution_options(isolation_level=isolation)
        with Session(engine) as s:
            spy.clear()
            assert grant(s, city.volunteering.id, "ALICE234", "g1").balance == 500
    finally:
        base.dispose()
    assert spy.paths() == [path]
    assert len(spy.connections) == (1 if path == "one" else 0)  # sent, or not at all
    assert balance(pg_engine, accounts["ALICE234"]) == 500
    assert balance(pg_engine, city.volunteering.account_id) == 100_000 - 500


def test_a_session_bound_to_the_callers_connection_grants_in_the_callers_transaction(
    pg_engine: Engine, spy: Spy
) -> None:
    """A session joined to a caller's transaction (Session(bind=connection), as tests that
    roll back do): the grant is part of it, and rolled back with it."""
    with Session(pg_engine, expire_on_commit=False) as s:
        city = build_city(s, now=T0)
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
    with pg_engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as s:
            spy.clear()
            assert grant(s, city.volunteering.id, "ALICE234", "g1").balance == 500
        assert spy.paths() == ["general"]
        assert spy.connections == []  # the statement was never sent
        outer.rollback()
    assert balance(pg_engine, accounts["ALICE234"]) == 0
    assert balance(pg_engine, city.volunteering.account_id) == 100_000


def test_the_production_directory_reads_on_the_statements_connection(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    """IdentityDirectory (the app's choice) asks the identity table on the grant's own
    connection, in an implicit transaction: a known MyKey ID is granted in one statement,
    an unknown one is refused by the general path and nothing is written."""
    table(MyKeyID).create(pg_engine)
    directory = IdentityDirectory()
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        accounts = open_accounts(s, city.muni.id, ["ALICE234", "BOB23456"])
        s.add(MyKeyID(id="ALICE234", created_at=T0))
        s.commit()
        spy.clear()
        done = programs.grant(
            s, city.volunteering.id, "ALICE234", key="g1", directory=directory, now=T0
        )
        assert done.balance == 500
        before = snapshot(pg_engine)
        with pytest.raises(NotFound) as refused:
            programs.grant(
                s, city.volunteering.id, "BOB23456", key="g2", directory=directory, now=T0
            )
        assert refused.value.code is Code.UNKNOWN_CITIZEN
    assert spy.paths() == ["one", "general"]
    assert snapshot(pg_engine) == before
    assert balance(pg_engine, accounts["ALICE234"]) == 500
    assert balance(pg_engine, accounts["BOB23456"]) == 0


# --- 6. the session goes on in ordinary transactions ---------------------------------


@pytest.mark.parametrize("path", ["lane", "pooled", "general"])
def test_the_session_is_left_out_of_autocommit(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """The call runs on a lane connection (kept in autocommit, never the session's; with
    no account yet, "general", it writes nothing there and the general path opens it), or,
    when the lane has none free ("pooled": SIZE 0 here), on a pooled connection switched
    into autocommit for the call and back; the session goes on in ordinary transactions."""
    if path == "pooled":
        monkeypatch.setattr(lane, "SIZE", 0)
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        if path != "general":
            open_accounts(s, city.muni.id, ["ALICE234"])  # else the general path opens it
        spy.clear()
        grant(s, city.volunteering.id, "ALICE234", "g1")
        assert spy.paths() == ["general" if path == "general" else "one"]
        [used] = spy.connections  # the connection grant_alone ran on
        assert used.autocommit is (path != "pooled")  # a lane connection stays in it

        raw = pg.connection(s.connection())
        assert raw is not None
        assert (raw.dbapi is used) is (path == "pooled")  # the pool's, or the lane's own
        assert raw.dbapi.autocommit is False
        ledger.open_account(s, city.muni.id, AccountKind.CITIZEN, "BOB23456", T0)
        assert raw.dbapi.info.transaction_status is TransactionStatus.INTRANS
        assert rows(pg_engine, BOB) == []  # not committed: unseen from elsewhere
        s.rollback()
    assert rows(pg_engine, BOB) == []
    assert len(rows(pg_engine, "SELECT id FROM points_accounts WHERE owner = 'ALICE234'")) == 1


# --- 7. a lost connection ----------------------------------------------------------------


def test_a_backend_terminated_before_the_statement_is_a_disconnect_and_writes_nothing(
    pg_admin: Engine,
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    spy: Spy,
) -> None:
    real_row = pg.Raw.row

    def killing(raw: pg.Raw, sql: str, params: dict[str, Any]) -> Any:
        if sql == grant_pg._GRANT:  # only the grant's own statement
            terminate(pg_admin, raw.dbapi.info.backend_pid)
        return real_row(raw, sql, params)

    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering.id
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
        before = snapshot(pg_engine)
        spy.clear()
        with monkeypatch.context() as m, pytest.raises(exc.DBAPIError) as caught:
            m.setattr(pg.Raw, "row", killing)
            grant(s, vol, "ALICE234", "g1")
    assert isinstance(caught.value, exc.OperationalError)
    assert isinstance(caught.value.orig, psycopg.OperationalError)
    assert caught.value.connection_invalidated
    assert caught.value.statement == grant_pg._GRANT
    assert spy.outcomes == [caught.value]  # raised by grant_alone: no general path after it
    assert snapshot(pg_engine) == before

    with pg_sessions() as fresh:  # the same engine: the dead connection was discarded
        spy.clear()
        retried = grant(fresh, vol, "ALICE234", "g1")  # the retry, same key
    assert spy.paths() == ["one"]
    assert (retried.balance, retried.replayed) == (500, False)
    assert balance(pg_engine, accounts["ALICE234"]) == 500


# --- 8. concurrency (correctness, not timing) ----------------------------------------------


def test_concurrent_grants_from_one_program_keep_the_books(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    threads, per_thread = 8, 50
    citizens = [f"CIT{n:05d}" for n in range(20)]
    with pg_sessions() as s:
        city = build_city(s, budget=1_000_000, now=T0)
        accounts = open_accounts(s, city.muni.id, citizens)
    vol = city.volunteering
    budget_before = balance(pg_engine, vol.account_id)
    plan = [
        [(citizens[(7 * n + i) % len(citizens)], f"t{n}-{i}") for i in range(per_thread)]
        for n in range(threads)
    ]
    spy.clear()

    def work(grants: list[tuple[str, str]]) -> list[programs.GrantResult]:
        with pg_sessions() as s:
            return [grant(s, vol.id, citizen, key) for citizen, key in grants]

    with ThreadPoolExecutor(threads) as pool:
        results = [r for done in pool.map(work, plan) for r in done]

    assert len(results) == threads * per_thread
    assert spy.paths() == ["one"] * len(results)  # every grant was the one statement
    granted = sum(r.points for r in results)
    assert granted == threads * per_thread * 500
    assert budget_before - balance(pg_engine, vol.account_id) == granted
    balances = {c: balance(pg_engine, accounts[c]) for c in citizens}
    assert sum(balances.values()) == granted
    counts = Counter(citizen for grants in plan for citizen, _ in grants)
    assert balances == {c: 500 * counts[c] for c in citizens}
    # No lost update: each citizen's grants saw each running balance exactly once.
    for c in citizens:
        seen = sorted(r.balance or 0 for r in results if r.mykey_id == c)
        assert seen == [500 * k for k in range(1, counts[c] + 1)]


def test_a_race_for_the_last_of_a_budget_grants_exactly_what_it_holds(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    threads, per_thread = 8, 5
    citizens = [f"RACE{n:04d}" for n in range(threads)]
    with pg_sessions() as s:
        city = build_city(s, budget=10 * 500, now=T0)  # exactly ten grants
        accounts = open_accounts(s, city.muni.id, citizens)
    vol = city.volunteering
    spy.clear()

    def work(n: int) -> list[object]:
        outcomes: list[object] = []
        with pg_sessions() as s:
            for i in range(per_thread):
                try:
                    outcomes.append(grant(s, vol.id, citizens[n], f"race-{n}-{i}"))
                except Refused as refused:
                    outcomes.append(refused.code)
        return outcomes

    with ThreadPoolExecutor(threads) as pool:
        outcomes = [o for done in pool.map(work, range(threads)) for o in done]

    granted = [o for o in outcomes if isinstance(o, programs.GrantResult)]
    assert len(granted) == 10
    refused = [o for o in outcomes if not isinstance(o, programs.GrantResult)]
    assert refused == [Code.BUDGET_EXHAUSTED] * 30
    assert balance(pg_engine, vol.account_id) == 0
    assert sum(balance(pg_engine, accounts[c]) for c in citizens) == 10 * 500
    # The ten were written by the statement; each refusal fell back, then was refused.
    assert sorted(spy.paths()) == ["general"] * 30 + ["one"] * 10


def test_a_lane_connection_dropped_while_idle_is_replaced_before_the_call(
    pg_admin: Engine,
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    spy: Spy,
) -> None:
    """As the pool does (webapp.db.make_engine): a lane connection idle for
    IDLE_PING_SECONDS is pinged before use; one the server dropped is replaced, and the
    grant is still one call."""
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        vol = city.volunteering.id
        accounts = open_accounts(s, city.muni.id, ["ALICE234"])
        spy.clear()
        grant(s, vol, "ALICE234", "g1")
        [first] = spy.connections
        terminate(pg_admin, first.info.backend_pid)
        grant(s, vol, "ALICE234", "g2")
    assert spy.paths() == ["one", "one"]
    assert spy.connections[1] is not first and first.closed
    assert balance(pg_engine, accounts["ALICE234"]) == 1000
