"""The ledger on PostgreSQL: migrations, a full life cycle, and a hot account under threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from points_pg import NAMES, diff, migrate, schema_url
from points_workload import T0
from sqlalchemy import Engine, create_engine, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from webapp.points import conversion, programs, reports, spend
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.models import POINTS_TABLES, Account, Transfer


def test_postgres_upgrade_matches_models_and_downgrades(pg_schema: str) -> None:
    engine = create_engine(schema_url(pg_schema))
    migrate(engine, "head")
    assert diff(engine) == []
    assert set(inspect(engine).get_table_names()) >= NAMES
    migrate(engine, "base")
    assert not NAMES & set(inspect(engine).get_table_names())
    engine.dispose()


def test_life_cycle(pg_sessions: sessionmaker[Session]) -> None:
    d = AnyMyKeyId()
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        g = programs.grant(s, city.volunteering.id, "ALICE234", key="g1", directory=d, now=T0)
        assert g.balance == 500
        assert programs.grant(
            s, city.volunteering.id, "ALICE234", key="g1", directory=d, now=T0
        ).replayed
        conversion.convert(
            s, city.partner, municipality_code="011002", citizen="ALICE234", partner_points=1000,
            ref="R1", directory=d, now=T0,
        )  # fmt: skip
        assert conversion.post_due(s, now=T0 + timedelta(days=14)) == 1
        paid = spend.spend(
            s, city.museum.id, "ALICE234", 1200, key="t1", now=T0 + timedelta(days=15)
        )
        assert paid.balance == 400
        spend.refund(
            s, city.museum.id, paid.transfer_id, 200, key="r1", now=T0 + timedelta(days=15)
        )
        [mine] = reports.citizen_balances(s, "ALICE234", T0 + timedelta(days=15))
        assert (mine.balance, mine.spendable) == (600, 600)


def test_hot_budget_account_under_16_threads_loses_no_update(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions() as s:
        city = build_city(s, budget=500 * 300, now=T0)  # room for exactly 300 grants
        program_id, account_id = city.volunteering.id, city.volunteering.account_id
    d = AnyMyKeyId()

    def worker(n: int) -> int:
        ok = 0
        with pg_sessions() as s:
            for i in range(25):
                try:
                    programs.grant(
                        s,
                        program_id,
                        f"HOT{(n * 7 + i) % 40:05d}",
                        key=f"h{n}-{i}",
                        directory=d,
                        now=T0,
                    )
                    ok += 1
                except programs.Refused:
                    pass
        return ok

    with ThreadPoolExecutor(16) as pool:
        granted = sum(pool.map(worker, range(16)))  # 400 attempts for 300 grants
    assert granted == 300
    with pg_sessions() as s:
        budget = s.get(Account, account_id)
        assert budget is not None and budget.balance == 0
        count = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.kind == "grant"))
        assert count == 300
    assert {t.name for t in POINTS_TABLES} <= set(inspect(pg_engine).get_table_names())


def test_shared_rows_deferred_to_commit_are_never_lost(pg_sessions: sessionmaker[Session]) -> None:
    """A write committed without `ledger.run` still applies the budget update (the hook),
    and an overspent budget refuses at commit, whichever way the commit goes."""
    from webapp.points import ledger
    from webapp.points.errors import Refused
    from webapp.points.programs import grant_posting, program_terms

    with pg_sessions() as s:
        city = build_city(s, budget=1000, now=T0)
        terms = program_terms(s, city.volunteering.id)
        assert terms is not None
        ledger.write(s, [grant_posting(terms, "ALICE234", "d1", "h", T0)], T0)
        s.commit()  # not through run(): the before_commit hook applies the budget update
        budget = s.get(Account, city.volunteering.account_id)
        assert budget is not None and budget.balance == 500
        postings = [grant_posting(terms, f"CIT{n}", f"d{n + 2}", "h", T0) for n in range(2)]
        ledger.write(s, postings, T0)  # 1000 more than the 500 left
        try:
            s.commit()
            raise AssertionError("overspent budget committed")
        except Refused:
            s.rollback()
        d = AnyMyKeyId()
        with_run = [
            lambda n=n: programs.grant(
                s, city.volunteering.id, f"RUN{n}", key=f"r{n}", directory=d, now=T0
            )
            for n in range(2)
        ]
        with_run[0]()
        try:
            with_run[1]()
            raise AssertionError("overspent budget committed")
        except Refused:
            pass
        assert s.get(Account, city.volunteering.account_id).balance == 0  # type: ignore[union-attr]
