"""A spend on PostgreSQL as one function call of its own (webapp.points.spend_pg), on a
real server: the same rows as the general path (transfer, lots soonest expiry first with
expired ones skipped, lot moves, both running balances); nothing written when it must be
refused or replayed, the general path then answering as before; no overdraft under
threads. The functions exist after the migrations and are dropped by their downgrade.
The ledger invariants are checked after every test (the pg_engine fixture).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from points_pg import balance, migrate, rows, schema_url, snapshot
from points_workload import T0
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from webapp.points import pg_functions, programs, spend
from webapp.points.demo import City, build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, Conflict, NotFound, Refused
from webapp.points.models import Merchant, Municipality, ProgramCategory
from webapp.points.retention import window
from webapp.points.spend_pg import OneRefund, OneSpend

D = AnyMyKeyId()
LATER = T0 + timedelta(days=20)  # SHORT's lot has expired, MID's and VOL's have not


class Spy:
    """Wraps spend.spend_alone (or refund_alone): what each call returned, or None without
    calling it (`general_only`: the general path)."""

    def __init__(self, real: Any = spend.spend_alone) -> None:
        self.real = real
        self.outcomes: list[object] = []
        self.general_only = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.general_only:
            self.outcomes.append(None)
            return None
        got = self.real(*args, **kwargs)
        self.outcomes.append(got)
        return got

    def paths(self) -> list[str]:
        return ["one" if isinstance(o, OneSpend | OneRefund) else "general" for o in self.outcomes]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy()
    monkeypatch.setattr(spend, "spend_alone", found)
    return found


@pytest.fixture
def refund_spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy(spend.refund_alone)
    monkeypatch.setattr(spend, "refund_alone", found)
    return found


def city_with_lots(s: Session, citizens: list[str]) -> City:
    """Each citizen gets 100 points expiring at T0+10 days (SHORT), 300 at T0+30 (MID) and
    500 at T0+180 (VOL): 900 in all, 800 of them live at LATER."""
    city = build_city(s, now=T0)
    made = [city.volunteering.id]
    for code, points, days in (("SHORT", 100, 10), ("MID", 300, 30)):
        program = programs.create_program(
            s, city.muni.id, code, code, ProgramCategory.EVENT, points_per_grant=points,
            expiry_days=days, budget=10_000, now=T0,
        )  # fmt: skip
        made.append(program.id)
    for citizen in citizens:
        for program_id in made:
            key = f"{citizen}-{program_id}"
            programs.grant(s, program_id, citizen, key=key, directory=D, now=T0)
    return city


def test_the_call_writes_the_rows_the_general_path_writes(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234", "BOB23456"])
        one = spend.spend(s, city.museum.id, "ALICE234", 400, key="a", now=LATER)
        spy.general_only = True
        general = spend.spend(s, city.museum.id, "BOB23456", 400, key="b", now=LATER)
    assert spy.paths() == ["one", "general"]
    assert (one.points, one.balance, one.merchant, one.replayed) == (400, 500, "市立美術館", False)
    assert (general.points, general.balance, general.merchant) == (400, 500, "市立美術館")

    transfers = {
        t["idempotency_key"]: t
        for t in rows(pg_engine, "SELECT * FROM points_transfers WHERE kind = 'spend'")
    }
    a, b = transfers[f"spend:{city.museum.id}:a"], transfers[f"spend:{city.museum.id}:b"]
    assert (a["id"], b["id"]) == (one.transfer_id, general.transfer_id)
    per = {"id", "idempotency_key", "payload_hash", "debit_account_id", "credit_balance"}
    assert {k: v for k, v in a.items() if k not in per} == {
        k: v for k, v in b.items() if k not in per
    }
    assert a["debit_balance"] == 500
    assert (a["credit_balance"], b["credit_balance"]) == (400, 800)  # the merchant's running

    def moves(transfer_id: int) -> list[tuple[int, Any]]:
        return [
            (m["delta"], m["expires_at"])
            for m in rows(
                pg_engine,
                "SELECT m.delta, l.expires_at FROM points_lot_moves m"
                " JOIN points_lots l ON l.id = m.lot_id WHERE m.transfer_id = :t ORDER BY m.id",
                t=transfer_id,
            )
        ]

    # MID (soonest live expiry) emptied first, then VOL; SHORT (expired) untouched.
    expected = [(-300, T0 + timedelta(days=30)), (-100, T0 + timedelta(days=180))]
    assert moves(one.transfer_id) == moves(general.transfer_id) == expected

    def remaining(account_id: int) -> list[int]:
        return [
            r["remaining"]
            for r in rows(
                pg_engine,
                "SELECT remaining FROM points_lots WHERE account_id = :a ORDER BY expires_at",
                a=account_id,
            )
        ]

    assert remaining(a["debit_account_id"]) == remaining(b["debit_account_id"]) == [100, 0, 400]
    assert balance(pg_engine, city.museum.account_id) == 800


def test_refusals_write_nothing_and_the_general_path_gives_the_reason(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])
        before = snapshot(pg_engine)
        # 850 is within the balance (900) but not within the live lots (800).
        for points in (850, 901):
            with pytest.raises(Refused) as refused:
                spend.spend(s, city.museum.id, "ALICE234", points, key=f"k{points}", now=LATER)
            assert refused.value.code is Code.INSUFFICIENT_POINTS
        with pytest.raises(Refused):  # nobody: no account here
            spend.spend(s, city.museum.id, "NOBODY23", 1, key="n", now=LATER)
        merchant = s.get(Merchant, city.museum.id)
        assert merchant is not None
        merchant.active = False
        s.commit()
        after_commit = snapshot(pg_engine)
        with pytest.raises(Refused) as inactive:
            spend.spend(s, city.museum.id, "ALICE234", 1, key="i", now=LATER)
        assert inactive.value.code is Code.INACTIVE
    assert spy.paths() == ["general"] * 4
    assert after_commit == before  # the ledger's tables: nothing written
    assert snapshot(pg_engine) == before


def test_a_replayed_key_answers_with_the_first_spend_and_writes_nothing(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])
        first = spend.spend(s, city.museum.id, "ALICE234", 800, key="k", now=LATER)
        after = snapshot(pg_engine)
        again = spend.spend(s, city.museum.id, "ALICE234", 800, key="k", now=LATER)
        with pytest.raises(Conflict) as conflict:
            spend.spend(s, city.museum.id, "ALICE234", 1, key="k", now=LATER)
    assert spy.paths() == ["one", "general", "general"]
    assert (again.transfer_id, again.balance, again.replayed) == (first.transfer_id, 100, True)
    assert conflict.value.code is Code.IDEMPOTENCY_CONFLICT
    assert snapshot(pg_engine) == after


def test_parallel_spends_of_one_citizen_never_overdraw(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])

    def work(n: int) -> list[object]:
        got: list[object] = []
        with pg_sessions() as s:
            for i in range(6):
                try:
                    got.append(
                        spend.spend(s, city.museum.id, "ALICE234", 50, key=f"{n}-{i}", now=LATER)
                    )
                except Refused as refused:
                    got.append(refused.code)
        return got

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for done in pool.map(work, range(8)) for o in done]
    paid = [o for o in outcomes if isinstance(o, spend.Receipt)]
    assert len(paid) == 16  # 800 live points, 50 each
    assert [o for o in outcomes if not isinstance(o, spend.Receipt)] == [
        Code.INSUFFICIENT_POINTS
    ] * 32
    assert sorted(r.balance for r in paid) == list(range(100, 900, 50))  # each seen once
    assert balance(pg_engine, city.museum.account_id) == 800
    assert "one" in spy.paths()


def lot_moves(engine: Engine, transfer_id: int) -> list[tuple[int, Any]]:
    """(delta, the lot's expiry) of a transfer's lot moves, in the order written."""
    return [
        (m["delta"], m["expires_at"])
        for m in rows(
            engine,
            "SELECT m.delta, l.expires_at FROM points_lot_moves m"
            " JOIN points_lots l ON l.id = m.lot_id WHERE m.transfer_id = :t ORDER BY m.id",
            t=transfer_id,
        )
    ]


def test_a_refund_call_writes_the_rows_the_general_path_writes(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], refund_spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234", "BOB23456"])
        a = spend.spend(s, city.museum.id, "ALICE234", 400, key="a", now=LATER)
        b = spend.spend(s, city.museum.id, "BOB23456", 400, key="b", now=LATER)
        one = spend.refund(s, city.museum.id, a.transfer_id, 350, key="ra", now=LATER)
        refund_spy.general_only = True
        general = spend.refund(s, city.museum.id, b.transfer_id, 350, key="rb", now=LATER)
    assert refund_spy.paths() == ["one", "general"]
    assert (one.spend_id, one.points, one.refundable_left, one.replayed) == (
        a.transfer_id, 350, 50, False,
    )  # fmt: skip
    assert (general.points, general.refundable_left) == (350, 50)
    refunds = {
        t["reversal_of"]: t
        for t in rows(pg_engine, "SELECT * FROM points_transfers WHERE kind = 'refund'")
    }
    ra, rb = refunds[a.transfer_id], refunds[b.transfer_id]
    assert (ra["id"], rb["id"]) == (one.transfer_id, general.transfer_id)
    per = {"id", "idempotency_key", "payload_hash", "credit_account_id", "reversal_of"}
    assert {k: v for k, v in ra.items() if k not in per | {"debit_balance"}} == {
        k: v for k, v in rb.items() if k not in per | {"debit_balance"}
    }
    assert (ra["credit_balance"], ra["debit_balance"], rb["debit_balance"]) == (850, 450, 100)
    # Latest expiry first: VOL's 100 back, then 250 of MID's 300.
    expected = [(100, T0 + timedelta(days=180)), (250, T0 + timedelta(days=30))]
    assert lot_moves(pg_engine, one.transfer_id) == lot_moves(pg_engine, general.transfer_id)
    assert lot_moves(pg_engine, one.transfer_id) == expected
    assert balance(pg_engine, city.museum.account_id) == 100


def test_refunds_past_the_spend_the_window_or_the_merchant_write_nothing(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], refund_spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])
        paid = spend.spend(s, city.museum.id, "ALICE234", 400, key="p", now=LATER)
        first = spend.refund(s, city.museum.id, paid.transfer_id, 300, key="r1", now=LATER)
        second = spend.refund(s, city.museum.id, paid.transfer_id, 100, key="r2", now=LATER)
        assert (first.refundable_left, second.refundable_left) == (100, 0)
        before = snapshot(pg_engine)
        with pytest.raises(Refused) as exceeded:
            spend.refund(s, city.museum.id, paid.transfer_id, 1, key="r3", now=LATER)
        assert exceeded.value.code is Code.REFUND_EXCEEDS_SPENT
        again = spend.refund(s, city.museum.id, paid.transfer_id, 300, key="r1", now=LATER)
        assert (again.transfer_id, again.replayed) == (first.transfer_id, True)
        late = LATER + timedelta(days=31)  # the city's window is 30 days
        with pytest.raises(Refused) as closed:
            spend.refund(s, city.museum.id, paid.transfer_id, 1, key="r4", now=late)
        assert closed.value.code is Code.REFUND_WINDOW_CLOSED
        with pytest.raises(NotFound):  # not a spend
            spend.refund(s, city.museum.id, first.transfer_id, 1, key="r5", now=LATER)
    assert refund_spy.paths() == ["one", "one"] + ["general"] * 4
    assert snapshot(pg_engine) == before


def test_parallel_refunds_of_one_spend_never_pass_it(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], refund_spy: Spy
) -> None:
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])
        paid = spend.spend(s, city.museum.id, "ALICE234", 400, key="p", now=LATER)

    def work(n: int) -> list[object]:
        got: list[object] = []
        with pg_sessions() as s:
            for i in range(3):
                try:
                    got.append(
                        spend.refund(
                            s, city.museum.id, paid.transfer_id, 50, key=f"{n}-{i}", now=LATER
                        )
                    )
                except Refused as refused:
                    got.append(refused.code)
        return got

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for done in pool.map(work, range(8)) for o in done]
    done = [o for o in outcomes if isinstance(o, spend.RefundResult)]
    assert len(done) == 8  # 400 in 50s
    assert [o for o in outcomes if not isinstance(o, spend.RefundResult)] == [
        Code.REFUND_EXCEEDS_SPENT
    ] * 16
    assert sorted(r.refundable_left for r in done) == list(range(0, 400, 50))
    assert balance(pg_engine, city.museum.account_id) == 0


def test_the_migrations_create_and_drop_the_functions(pg_schema: str) -> None:
    engine = create_engine(schema_url(pg_schema))
    names = set(pg_functions.ALL)
    sql = (
        "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = :s AND proname LIKE 'points_%'"
    )
    try:
        migrate(engine, "head")
        assert {r["proname"] for r in rows(engine, sql, s=pg_schema)} == names
        migrate(engine, "base")
        assert rows(engine, sql, s=pg_schema) == []
    finally:
        engine.dispose()


def test_create_all_creates_the_functions(pg_engine: Engine, pg_schema: str) -> None:
    sql = (
        "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = :s AND proname LIKE 'points_%'"
    )
    assert {r["proname"] for r in rows(pg_engine, sql, s=pg_schema)} == set(pg_functions.ALL)


def test_a_refund_in_a_city_on_the_platforms_window_is_one_call(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], refund_spy: Spy
) -> None:
    """A municipality without its own window uses the platform's (retention.window),
    passed to the call: inside it one call, past it the general path refuses."""
    with pg_sessions() as s:
        city = city_with_lots(s, ["ALICE234"])
        muni = s.get(Municipality, city.muni.id)
        assert muni is not None
        muni.refund_window_days = None  # the platform's: 90 days by default
        s.commit()
        paid = spend.spend(s, city.museum.id, "ALICE234", 400, key="p", now=LATER)
        inside = LATER + timedelta(days=window.platform_days())
        done = spend.refund(s, city.museum.id, paid.transfer_id, 100, key="r1", now=inside)
        assert done.refundable_left == 300
        before = snapshot(pg_engine)
        with pytest.raises(Refused) as closed:
            spend.refund(
                s, city.museum.id, paid.transfer_id, 100, key="r2",
                now=inside + timedelta(seconds=1),
            )  # fmt: skip
        assert closed.value.code is Code.REFUND_WINDOW_CLOSED
    assert refund_spy.paths() == ["one", "general"]
    assert snapshot(pg_engine) == before
