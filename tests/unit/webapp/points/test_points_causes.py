"""Donations and crowdfunding on SQLite: `flask points settle-projects` returns a missed
project's points into the lots they came from (a fresh lot where expired), a project
closed early is settled at its end too, and the invariants hold (checked after the test
by the folder's fixture, and by `flask points check`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.points import causes, invariants, programs, reports
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import Cause, CauseKind, CauseStatus, MissPolicy
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause, update_cause

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_settle_projects_command_returns_into_lots(
    app: Flask, s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    who = Officer(world.muni.id, "officer")
    programs.grant(s, world.volunteering.id, "ALICE234", key="g", directory=directory, now=T0)
    late = add_cause(
        s, who, code="LATE", name="遅い", description="", kind=CauseKind.PROJECT,
        goal_points=10_000, ends_at=T0 + 200 * DAY, miss_policy=MissPolicy.RETURN,
        fresh_days=10, now=T0,
    )  # fmt: skip
    early = add_cause(
        s, who, code="EARLY", name="早い", description="", kind=CauseKind.PROJECT,
        goal_points=10_000, ends_at=T0 + 20 * DAY, miss_policy=MissPolicy.RETURN,
        fresh_days=10, now=T0,
    )  # fmt: skip
    causes.donate(s, late.id, "ALICE234", 300, key="d1", now=T0 + DAY)
    causes.donate(s, early.id, "ALICE234", 50, key="d2", now=T0 + DAY)
    # The officer closes EARLY before its end: it is still settled at its end.
    update_cause(
        s, who, early.id, name="早い", description="", open_=False,
        miss_policy=MissPolicy.RETURN, fresh_days=10,
    )  # fmt: skip
    assert invariants.violations(s) == {}
    runner = app.test_cli_runner()
    result = runner.invoke(args=["points", "settle-projects", "--now", (T0 + 21 * DAY).isoformat()])
    assert result.exit_code == 0, result.output
    assert "EARLY: missed_returned, raised 50, returned 50 point(s) in 1 return(s)" in result.output
    at = T0 + 201 * DAY
    result = runner.invoke(args=["points", "settle-projects", "--now", at.isoformat()])
    assert "LATE: missed_returned, raised 300, returned 300 point(s)" in result.output
    s.expire_all()
    statuses = {c.code: c.status for c in s.scalars(select(Cause))}
    assert statuses == {"LATE": CauseStatus.MISSED_RETURNED, "EARLY": CauseStatus.MISSED_RETURNED}
    # The grant's lot (180 days) had expired by day 201: a fresh lot of 10 days.
    [mine] = reports.citizen_balances(s, "ALICE234", at)
    assert [(lot.remaining, lot.expires_at, lot.expired) for lot in mine.lots] == [
        (200, T0 + 180 * DAY, True),  # the rest of the grant: expired, for the expiry job
        (300, at + 10 * DAY, False),
    ]
    assert runner.invoke(args=["points", "check"]).output.strip().endswith("invariants hold")
