"""Donations and crowdfunding on PostgreSQL: give, goal met, missed and kept, missed and
returned into the very lots (fresh ones where expired), re-runs, and the invariants after
each step."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from points_workload import T0
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from webapp.points import causes, expiry, invariants, programs, reports
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.errors import Code, PointsError
from webapp.points.models import (
    Cause,
    CauseKind,
    CauseStatus,
    MissPolicy,
    PointLot,
    ProgramCategory,
    Transfer,
    TransferKind,
)
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause, update_cause
from webapp.points.spend import spendable

DAY = timedelta(days=1)


def _ok(s: Session) -> None:
    s.commit()
    assert invariants.violations(s) == {}


def _project(
    s: Session,
    who: Officer,
    code: str,
    goal: int,
    days: int,
    policy: MissPolicy = MissPolicy.RETURN,
) -> Cause:
    return add_cause(
        s, who, code=code, name=f"Project {code}", description="", kind=CauseKind.PROJECT,
        goal_points=goal, ends_at=T0 + days * DAY, miss_policy=policy, fresh_days=30, now=T0,
    )  # fmt: skip


def _lots(s: Session, citizen: str, at: object) -> list[tuple[int, object]]:
    [mine] = reports.citizen_balances(s, citizen, at)  # type: ignore[arg-type]
    return [(lot.remaining, lot.expires_at) for lot in mine.lots]


def test_give_and_settle(pg_sessions: sessionmaker[Session]) -> None:
    d = AnyMyKeyId()
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        who = Officer(city.muni.id, "officer")
        for citizen in ("ALICE234", "BOB23456"):
            programs.grant(s, city.volunteering.id, citizen, key=citizen, directory=d, now=T0)
        missed = _project(s, who, "MISS", 1000, 10)
        met = _project(s, who, "MET", 500, 10)
        kept = _project(s, who, "KEEP", 10_000, 10, MissPolicy.KEEP)
        relief = add_cause(
            s, who, code="RELIEF", name="Disaster relief", description="", kind=CauseKind.CAUSE,
            goal_points=None, ends_at=None, miss_policy=MissPolicy.RETURN, fresh_days=30, now=T0,
        )  # fmt: skip
        _ok(s)

        r = causes.donate(s, missed.id, "ALICE234", 300, key="a1", now=T0 + DAY)
        assert (r.points, r.balance, r.replayed) == (300, 200, False)
        again = causes.donate(s, missed.id, "ALICE234", 300, key="a1", now=T0 + DAY)
        assert again.replayed and again.transfer_id == r.transfer_id  # confirmed twice: once
        with pytest.raises(PointsError) as conflict:
            causes.donate(s, missed.id, "ALICE234", 301, key="a1", now=T0 + DAY)
        assert conflict.value.code is Code.IDEMPOTENCY_CONFLICT
        causes.donate(s, kept.id, "ALICE234", 100, key="a2", now=T0 + DAY)
        causes.donate(s, met.id, "BOB23456", 450, key="b1", now=T0 + DAY)
        causes.donate(s, relief.id, "BOB23456", 50, key="b2", now=T0 + DAY)
        _ok(s)
        with pytest.raises(PointsError) as poor:
            causes.donate(s, relief.id, "ALICE234", 101, key="a3", now=T0 + DAY)
        assert poor.value.code is Code.INSUFFICIENT_POINTS
        with pytest.raises(PointsError) as late:
            causes.donate(s, met.id, "BOB23456", 1, key="b3", now=T0 + 10 * DAY)
        assert late.value.code is Code.CAUSE_CLOSED
        with pytest.raises(PointsError) as unknown:
            causes.donate(s, 999_999, "BOB23456", 1, key="b4", now=T0 + DAY)
        assert unknown.value.code is Code.UNKNOWN_CAUSE
        s.rollback()
        # MET has 450 of its 500: a new grant, and Bob gives the last 50.
        programs.grant(s, city.volunteering.id, "BOB23456", key="B2", directory=d, now=T0)
        causes.donate(s, met.id, "BOB23456", 50, key="b5", now=T0 + 2 * DAY)
        _ok(s)

        nothing = causes.settle_projects(s, now=T0 + 9 * DAY)  # before any end
        assert nothing == []
        done = {x.code: x for x in causes.settle_projects(s, now=T0 + 11 * DAY)}
        _ok(s)
        assert done["MET"].status == CauseStatus.MET and done["MET"].raised == 500
        assert done["KEEP"].status == CauseStatus.MISSED_KEPT and done["KEEP"].returned == 0
        assert done["MISS"].status == CauseStatus.MISSED_RETURNED
        assert (done["MISS"].returned, done["MISS"].returns) == (300, 1)
        assert "RELIEF" not in done  # a cause has no end
        # Alice's 300 are back in the lot they came from, with its own expiry; the 100 she
        # gave the project that keeps them are not.
        assert _lots(s, "ALICE234", T0 + 11 * DAY) == [(400, T0 + 180 * DAY)]
        back = s.scalars(
            select(Transfer).where(Transfer.kind == TransferKind.DONATION_RETURN.value)
        ).one()
        assert back.reversal_of == r.transfer_id and back.amount == 300
        lines = reports.citizen_transfers(s, back.credit_account_id)
        assert [(x.kind, x.points, x.counterparty, x.detail) for x in lines[:2]] == [
            ("donation_return", 300, "Project MISS", "project"),
            ("donation", -100, "Project KEEP", "project"),
        ]

        summary = reports.municipality_summary(s, city.muni.id)
        assert (summary.owed_to_causes, summary.owed_to_merchants) == (500 + 50 + 100, 0)
        # A re-run returns nothing twice and changes no status.
        rerun = {x.code: x for x in causes.settle_projects(s, now=T0 + 12 * DAY)}
        assert set(rerun) == {"MISS"} and rerun["MISS"].returned == 0
        _ok(s)
        # Settled: its policy can no longer change, nor can it reopen.
        with pytest.raises(PointsError) as settled:
            update_cause(
                s, who, missed.id, name="x", description="", open_=True,
                miss_policy=MissPolicy.KEEP, fresh_days=30,
            )  # fmt: skip
        assert settled.value.code is Code.CAUSE_CLOSED
        s.rollback()


def test_returned_points_from_expired_lots_get_a_fresh_expiry(
    pg_sessions: sessionmaker[Session],
) -> None:
    d = AnyMyKeyId()
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        who = Officer(city.muni.id, "officer")
        long_life = programs.create_program(
            s, city.muni.id, "LONG", "長寿", ProgramCategory.LONG_LIFE, points_per_grant=500,
            expiry_days=365, budget=10_000, now=T0,
        )  # fmt: skip
        programs.grant(s, city.volunteering.id, "CAROL789", key="c1", directory=d, now=T0)
        programs.grant(s, long_life.id, "CAROL789", key="c2", directory=d, now=T0)
        project = _project(s, who, "LATE", 100_000, 200)
        _ok(s)
        # 500 from the lot expiring at day 180, 200 from the one at day 365.
        causes.donate(s, project.id, "CAROL789", 700, key="c3", now=T0 + DAY)
        _ok(s)
        expiry.expire_due(s, now=T0 + 190 * DAY)  # the emptied lot has nothing to expire
        _ok(s)
        [done] = causes.settle_projects(s, now=T0 + 201 * DAY)
        _ok(s)
        assert (done.status, done.returned) == (CauseStatus.MISSED_RETURNED, 700)
        at = T0 + 201 * DAY
        assert sorted(_lots(s, "CAROL789", at), key=lambda x: x[1]) == [
            (500, at + 30 * DAY),  # its lot had expired: a fresh one of the project's 30 days
            (500, T0 + 365 * DAY),  # back into its own lot, with its own expiry
        ]
        assert (
            s.scalar(select(PointLot).where(PointLot.expires_at == T0 + 180 * DAY)).remaining == 0
        )
        # A return retried (a killed run) is a replay.
        cause = s.get(Cause, project.id)
        assert cause is not None
        [(tid, amount, acct)] = s.execute(
            select(Transfer.id, Transfer.amount, Transfer.debit_account_id).where(
                Transfer.kind == TransferKind.DONATION.value
            )
        ).all()
        assert causes.return_donation(s, cause, (tid, amount, acct, "CAROL789"), at) is False
        _ok(s)


def test_parallel_confirms_of_one_gift_pay_once(pg_sessions: sessionmaker[Session]) -> None:
    """Eight confirms racing with the flow's one key (a double tap, a script): one
    donation, the same receipt for all."""
    d = AnyMyKeyId()
    with pg_sessions() as s:
        city = build_city(s, now=T0)
        programs.grant(s, city.volunteering.id, "DAVE2345", key="g", directory=d, now=T0)
        relief = add_cause(
            s, Officer(city.muni.id, "officer"), code="RELIEF", name="支援", description="",
            kind=CauseKind.CAUSE, goal_points=None, ends_at=None, miss_policy=MissPolicy.RETURN,
            fresh_days=30, now=T0,
        )  # fmt: skip
        cause_id = relief.id

    def confirm(_: int) -> int:
        with pg_sessions() as s:
            return causes.donate(s, cause_id, "DAVE2345", 200, key="one", now=T0 + DAY).transfer_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(confirm, range(8)))
    assert len(ids) == 1
    with pg_sessions() as s:
        given = s.scalars(select(Transfer).where(Transfer.kind == "donation")).all()
        assert [t.amount for t in given] == [200]
        assert spendable(s, city.muni.id, "DAVE2345", T0 + DAY) == 300
        assert invariants.violations(s) == {}
