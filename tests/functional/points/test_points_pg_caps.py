"""Caps and budgets of programs on PostgreSQL, on every path that pays a citizen from a
program, alone and in parallel.

- The table of limits (a per-citizen cap in points, a per-citizen count of payments, the
  budget, the program paused) on each path as PostgreSQL runs it: a staff grant as one
  statement (webapp.points.grant_pg, which leaves capped programs to the general path),
  a staff grant on the general path (its fused citizen statement, the budget's UPDATE
  with the COMMIT), a CSV file, and a conversion's bonus posted at once, held then
  posted, and held then cancelled.
- Parallel conversions for one citizen, at every isolation level we claim, never pay
  together more bonus than the caps or the budget allow, and every conversion goes
  through; parallel grants of a capped program stop at the cap.

The ledger invariants are checked after every test (pg_engine).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from points_pg import rows, schema_url
from points_workload import T0
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import make_engine
from webapp.points import admin, conversion, grant_csv, programs
from webapp.points.demo import City, build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, CsvRejected, PointsError
from webapp.points.models import Partner, ProgramCategory

DIRECTORY = AnyMyKeyId()
THREADS = 16
BUSY_RETRIES = 4  # a client's retries of "busy" (points_workload does the same)
LIMITS: dict[str, dict[str, Any]] = {
    "points": {"cap_points_per_citizen": 150},
    "grants": {"cap_grants_per_citizen": 1},
    "budget": {"budget": 150},
    "paused": {"paused": True},
}
GRANTS = {  # three grants of 100 to one citizen: ok, or the refusal's code
    "points": [None, Code.CAP_REACHED, Code.CAP_REACHED],
    "grants": [None, Code.CAP_REACHED, Code.CAP_REACHED],
    "budget": [None, Code.BUDGET_EXHAUSTED, Code.BUDGET_EXHAUSTED],
    "paused": [Code.INACTIVE, Code.INACTIVE, Code.INACTIVE],
}
BONUSES = {  # the bonus paid on three conversions for one citizen, each asking 100
    "points": [100, 50, 0],
    "grants": [100, 0, 0],
    "budget": [100, 50, 0],
    "paused": [0, 0, 0],
}


def capped(
    s: Session,
    city: City,
    limits: dict[str, Any],
    category: ProgramCategory = ProgramCategory.EVENT,
) -> int:
    """A program of 100 points a grant with `limits`; its id."""
    limits = dict(limits)
    paused = limits.pop("paused", False)
    program = programs.create_program(
        s, city.muni.id, "CAP", "上限つき事業", category, points_per_grant=100,
        expiry_days=30, now=T0, **{"budget": 10_000, **limits},
    )  # fmt: skip
    if paused:
        program.active = False
        s.commit()
    return program.id


def received(engine: Engine, program_id: int) -> dict[str, int]:
    """Points each citizen had from the program, held or posted, never voided."""
    got = rows(
        engine,
        "SELECT a.owner, SUM(t.amount) AS points FROM points_transfers t"
        " JOIN points_accounts a ON a.id = t.credit_account_id"
        " WHERE t.program_id = :p AND a.kind = 'citizen' AND t.pending_id IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM points_transfers v WHERE v.pending_id = t.id AND v.status = 'voided')"
        " GROUP BY a.owner",
        p=program_id,
    )
    return {r["owner"]: int(r["points"]) for r in got}


def refusal(call: Callable[[], object]) -> Code | None:
    """None when it went through, else the refusal's code (a file's first error)."""
    try:
        call()
    except CsvRejected as exc:
        return exc.errors[0].code
    except PointsError as exc:
        return exc.code
    return None


# --- grants ---------------------------------------------------------------------------


def staff_grant(s: Session, city: City, program: int, n: int) -> None:
    """programs.grant from a session with nothing open (the one statement is tried)."""
    programs.grant(s, program, "ALICE234", key=f"g{n}", directory=DIRECTORY, now=T0)


def csv_file(s: Session, city: City, program: int, n: int) -> None:
    """A CSV file of one row (n blank lines make each file another)."""
    data = b"mykey_id,program\n" + b"\n" * n + b"ALICE234,CAP\n"
    grant_csv.grant_file(s, city.muni.id, data, directory=DIRECTORY, now=T0)


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize(
    ("path", "one_statement"),
    [(staff_grant, True), (staff_grant, False), (csv_file, False)],
    ids=["grant-one-statement", "grant-general-path", "csv"],
)
def test_grants_stop_at_every_limit(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    path: Callable[[Session, City, int, int], None],
    one_statement: bool,
    kind: str,
) -> None:
    if not one_statement:
        monkeypatch.setattr(programs, "grant_alone", lambda *args, **kwargs: None)
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        programs.grant(s, city.volunteering.id, "ALICE234", key="open", directory=DIRECTORY)
        program = capped(s, city, LIMITS[kind])
        got = [refusal(lambda n=n: path(s, city, program, n)) for n in range(3)]
    assert got == GRANTS[kind]
    paid = 100 * GRANTS[kind].count(None)
    assert received(pg_engine, program) == ({"ALICE234": paid} if paid else {})


# --- a conversion's bonus -------------------------------------------------------------


def bonus_terms(s: Session, city: City, limits: dict[str, Any], hold_days: int) -> int:
    """The test partner's terms (1:1, 10 %) paying its bonus from a program with `limits`."""
    program = capped(s, city, limits, ProgramCategory.PARTNER_BONUS)
    admin.set_terms(
        s, city.muni.id, city.partner.id, rate=(1, 1), bonus_bp=1000, min_unit=100,
        hold_days=hold_days, expiry_days=365, bonus_program_id=program, now=T0,
    )  # fmt: skip
    return program


def convert(
    s: Session, partner: Partner, ref: str, citizen: str = "ALICE234"
) -> conversion.ConversionResult:
    """1,000 partner points (a bonus of 100 asked) for `citizen` at T0."""
    return conversion.convert(
        s, partner, municipality_code="011002", citizen=citizen, partner_points=1000, ref=ref,
        directory=DIRECTORY, now=T0,
    )  # fmt: skip


@pytest.mark.parametrize("kind", list(LIMITS))
@pytest.mark.parametrize("path", ["posted-at-once", "held-then-posted", "held-then-cancelled"])
def test_a_conversion_goes_through_and_its_bonus_stops_at_every_limit(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], path: str, kind: str
) -> None:
    hold_days = 0 if path == "posted-at-once" else 14
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        program = bonus_terms(s, city, LIMITS[kind], hold_days)
        got = [convert(s, city.partner, f"R{n}") for n in range(3)]
        assert [(r.base_points, r.bonus_points, r.bonus_asked) for r in got] == [
            (1000, paid, 100) for paid in BONUSES[kind]
        ]
        if path == "held-then-cancelled":
            conversion.cancel(s, city.partner, "R0", now=T0)
            assert convert(s, city.partner, "R3").bonus_points == BONUSES[kind][0]
        if hold_days:
            assert conversion.post_due(s, now=T0 + timedelta(days=hold_days)) == 3
    total = sum(BONUSES[kind])
    assert received(pg_engine, program) == ({"ALICE234": total} if total else {})
    [alice] = rows(
        pg_engine,
        "SELECT balance, credits_pending FROM points_accounts WHERE owner = 'ALICE234'",
    )
    assert alice == {"balance": 3000 + total, "credits_pending": 0}


# --- in parallel ----------------------------------------------------------------------


def parallel(engine: Engine, n: int, call: Callable[[Session, int], object]) -> list[object]:
    """`call(session, i)` for i in range(n), from THREADS threads, a session each;
    a refusal comes back as its code. "Busy" (contended through every retry, nothing
    changed) is tried again with the same key, as a client does."""

    def one(i: int) -> object:
        with sessionmaker(engine, expire_on_commit=False)() as s:
            for _ in range(BUSY_RETRIES):
                try:
                    return call(s, i)
                except PointsError as exc:
                    s.rollback()
                    if exc.code is not Code.BUSY:
                        return exc.code
            return Code.BUSY

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(n)))


@pytest.fixture(params=["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"])
def isolated(request: pytest.FixtureRequest, pg_schema: str) -> Any:
    """An engine on the test's schema at one isolation level."""
    engine = make_engine(schema_url(pg_schema)).execution_options(isolation_level=request.param)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("limits", "hold_days", "most"),
    [
        ({"cap_points_per_citizen": 250}, 14, 250),
        ({"cap_points_per_citizen": 250}, 0, 250),
        ({"cap_grants_per_citizen": 3}, 14, 300),
        ({"cap_points_per_citizen": 250, "cap_grants_per_citizen": 2}, 0, 200),
        ({"budget": 250}, 14, 250),
        ({"budget": 250}, 0, 250),
    ],
    ids=["points-held", "points-at-once", "grants-held", "both-at-once", "budget-held",
         "budget-at-once"],
)  # fmt: skip
def test_parallel_conversions_for_one_citizen_never_pass_the_limit(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    isolated: Engine,
    limits: dict[str, Any],
    hold_days: int,
    most: int,
) -> None:
    """Sixteen conversions at once for a citizen with no account yet (so they also race
    to open it): all go through, and the bonuses paid add up to the limit, not past it."""
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        program = bonus_terms(s, city, limits, hold_days)
        partner_id = city.partner.id

    def one(s: Session, i: int) -> tuple[int, int]:
        partner = s.get(Partner, partner_id)
        assert partner is not None
        result = convert(s, partner, f"P{i}", "NEWCOMER")
        return result.base_points, result.bonus_points

    results = parallel(isolated, THREADS, one)
    assert all(isinstance(r, tuple) and r[0] == 1000 for r in results), results
    paid = sum(r[1] for r in results if isinstance(r, tuple))
    assert paid == most
    assert received(pg_engine, program) == {"NEWCOMER": most}
    if hold_days:
        with pg_sessions() as s:
            assert conversion.post_due(s, now=T0 + timedelta(days=hold_days)) == THREADS
    [account] = rows(pg_engine, "SELECT balance, credits_pending FROM points_accounts"
                     " WHERE owner = 'NEWCOMER'")  # fmt: skip
    assert account == {"balance": THREADS * 1000 + most, "credits_pending": 0}


def test_parallel_cancels_and_conversions_never_pass_the_cap(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], isolated: Engine
) -> None:
    """Held conversions cancelled while new ones arrive: the cap room a cancel gives back
    is taken at most once, and what stays held never passes the cap."""
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        program = bonus_terms(s, city, {"cap_points_per_citizen": 250}, hold_days=14)
        partner_id = city.partner.id
        first = [convert(s, city.partner, f"F{i}") for i in range(4)]
    assert [r.bonus_points for r in first] == [100, 100, 50, 0]

    def one(s: Session, i: int) -> object:
        partner = s.get(Partner, partner_id)
        assert partner is not None
        if i < 4:
            return conversion.cancel(s, partner, f"F{i}", now=T0).bonus_points
        return convert(s, partner, f"N{i}").bonus_points

    results = parallel(isolated, 4 + 12, one)
    assert results[:4] == [100, 100, 50, 0]  # each cancel answers with what it held
    assert all(isinstance(r, int) for r in results[4:]), results
    held = sum(results[4:])  # type: ignore[arg-type]
    assert held <= 250  # all new ones may have run before any cancel: then none got a bonus
    assert received(pg_engine, program) == ({"ALICE234": held} if held else {})
    totals = rows(
        pg_engine,
        "SELECT points, grants FROM points_program_citizen_totals WHERE program_id = :p",
        p=program,
    )
    assert totals == [{"points": held, "grants": sum(1 for r in results[4:] if r)}]


@pytest.mark.parametrize(
    ("limits", "granted"),
    [({"cap_grants_per_citizen": 3}, 3), ({"cap_points_per_citizen": 450}, 4),
     ({"budget": 550}, 5)],
    ids=["grants", "points", "budget"],
)  # fmt: skip
def test_parallel_grants_of_a_capped_program_stop_at_the_cap(
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    isolated: Engine,
    limits: dict[str, Any],
    granted: int,
) -> None:
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        program = capped(s, city, limits)

    def one(s: Session, i: int) -> object:
        return programs.grant(
            s, program, "ALICE234", key=f"p{i}", directory=DIRECTORY, now=T0
        ).points

    results = parallel(isolated, THREADS, one)
    refused = Code.BUDGET_EXHAUSTED if "budget" in limits else Code.CAP_REACHED
    assert sorted(results, key=str) == sorted([100] * granted + [refused] * (THREADS - granted),
                                              key=str)  # fmt: skip
    assert received(pg_engine, program) == {"ALICE234": 100 * granted}


@pytest.mark.parametrize("hold_days", [14, 0], ids=["held", "at-once"])
def test_parallel_conversions_of_many_citizens_never_overspend_the_bonus_budget(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], isolated: Engine, hold_days: int
) -> None:
    """Conversions of different citizens race for the last of the bonus budget: each bonus
    is sized on the budget read without a lock, and one sized on a figure that moved
    before its COMMIT is refused there and sized again. All go through; the bonuses paid
    never pass the budget."""
    budget = 2550
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        program = bonus_terms(s, city, {"budget": budget}, hold_days)
        partner_id = city.partner.id
        [account_id] = [p.account_id for p in [s.get(programs.Program, program)] if p]

    def one(s: Session, i: int) -> tuple[int, int]:
        partner = s.get(Partner, partner_id)
        assert partner is not None
        result = convert(s, partner, f"M{i}", f"CIT{i:05d}")
        return result.base_points, result.bonus_points

    results = parallel(isolated, 3 * THREADS, one)
    assert all(isinstance(r, tuple) and r[0] == 1000 for r in results), results
    paid = sum(r[1] for r in results if isinstance(r, tuple))
    assert 0 < paid <= budget
    [left] = rows(
        pg_engine,
        "SELECT balance - debits_pending AS left FROM points_accounts WHERE id = :i",
        i=account_id,
    )
    assert left == {"left": budget - paid}
