"""Retention on SQLite (issue 18): after `flask points compact` with the clock past the
refund window, the citizen's statement keeps monthly totals per category, the merchant's
settlement and the municipality's report are unchanged, `flask points check` is clean,
and the privacy scan finds no citizen–merchant pair older than the window in any table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import Column, ForeignKey, Integer, Table, select
from sqlalchemy.orm import Session

from tests.support.points_retention import (
    DAY,
    NOW,
    RECENT,
    T0,
    cap_counters,
    make_history,
    monthly,
    observe,
)
from webapp.db import Base
from webapp.points import causes, invariants, programs, reports, spend
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, Refused
from webapp.points.models import CauseKind, MissPolicy, Municipality, Transfer, UtcDateTime
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause
from webapp.points.retention import compact, scan, window


def test_compact_past_the_window_keeps_totals_and_leaves_no_pair(
    app: Flask, s: Session, directory: KnownMyKeyIds
) -> None:
    h = make_history(s, directory)
    before, months_before = observe(s, h), monthly(s, h)
    found = {f.table for f in scan.scan(s, now=NOW)}
    assert {"points_transfers", "points_lot_moves"} <= found
    runner = app.test_cli_runner()
    result = runner.invoke(args=["points", "privacy-scan", "--now", NOW.isoformat()])
    assert result.exit_code == 1 and "PAIR points_transfers" in result.output

    result = runner.invoke(args=["points", "compact", "--now", NOW.isoformat(), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "compacted 6 payment(s) and 4 grant(s)" in result.output

    assert observe(s, h) == before
    assert monthly(s, h) == months_before
    assert invariants.violations(s) == {}
    assert scan.scan(s, now=NOW) == []
    result = runner.invoke(args=["points", "privacy-scan", "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["points", "check"])
    assert result.exit_code == 0, result.output
    # The statement: recent payments in detail, older months as totals per category.
    alice = h.accounts["ALICE234"]
    detail = reports.citizen_transfers(s, alice, limit=200)
    assert [(t.kind, t.points) for t in detail if t.kind in ("spend", "refund")] == [("spend", -30)]
    totals = {(m.month, m.category): (m.paid, m.received) for m in reports.citizen_months(s, alice)}
    assert totals == {
        ("2025-04", "museum"): (100, 40),
        ("2025-04", "shop"): (50, 0),
        ("2025-05", "shop"): (70, 0),
        ("2025-04", "grant"): (100, 600),  # the child-rearing program, ended: no program
    }
    # The ended program's per-citizen counters went with its grants; volunteering runs on.
    assert cap_counters(s, h.child_id) == 0
    # A compacted grant can no longer be revoked (nor named: its citizen is gone).
    child_grant = s.scalars(
        select(Transfer.id).where(Transfer.program_id == h.child_id, Transfer.kind == "grant")
    ).first()
    assert child_grant is not None
    with pytest.raises(Refused) as refused:
        programs.revoke(s, child_grant, key="late-revoke", now=NOW)
    assert refused.value.code is Code.NOT_REVERSIBLE
    # A second run finds nothing left to do.
    again = compact.compact(s, now=NOW)
    assert (again.payments, again.grants) == (0, 0)
    s.rollback()


def test_compact_keeps_what_is_inside_the_window(s: Session, directory: KnownMyKeyIds) -> None:
    h = make_history(s, directory)
    done = compact.compact(s, now=T0 + 60 * DAY)  # the early history is 55-60 days old
    assert (done.payments, done.grants) == (0, 0)
    assert {f.table for f in scan.scan(s, now=T0 + 60 * DAY)} == set()
    # A municipality's own shorter window compacts sooner.
    muni = s.get(Municipality, h.city.muni.id)
    assert muni is not None
    # The next run starts where this one's window ended (a range read per merchant).
    assert muni.compacted_until == T0 + 60 * DAY - 90 * DAY
    muni.refund_window_days = 30
    s.commit()
    assert scan.scan(s, now=T0 + 60 * DAY) != []
    done = compact.compact(s, now=T0 + 60 * DAY)
    # The May payment (27 days old) stays.
    assert done.payments == 5 and scan.scan(s, now=T0 + 60 * DAY) == []
    assert invariants.violations(s) == {}
    s.rollback()


def test_a_compacted_payment_stays_closed_when_the_window_grows(
    s: Session, directory: KnownMyKeyIds
) -> None:
    h = make_history(s, directory)
    first = reports.citizen_transfers(s, h.accounts["BOB23456"], limit=200)
    bob_spend = next(t for t in first if t.kind == "spend")
    compact.compact(s, now=NOW)
    muni = s.get(Municipality, h.city.muni.id)
    assert muni is not None
    muni.refund_window_days = 3650
    s.commit()
    with pytest.raises(Refused) as refused:
        spend.refund(s, h.city.museum.id, bob_spend.transfer_id, 10, key="late", now=NOW)
    assert refused.value.code is Code.REFUND_WINDOW_CLOSED
    # The merchant's refund list no longer offers it either.
    listed = spend.refundable_payments(s, h.city.museum.id, now=NOW)
    assert bob_spend.transfer_id not in [p.transfer_id for p in listed]
    s.rollback()


def test_the_platform_window_is_a_setting() -> None:
    assert window.platform_days() == window.DEFAULT_DAYS == 90
    with pytest.raises(ValueError):
        window.configure(-1)


def test_recent_payment_is_refundable_under_the_platform_window(
    s: Session, directory: KnownMyKeyIds
) -> None:
    h = make_history(s, directory)
    alice = reports.citizen_transfers(s, h.accounts["ALICE234"], limit=1)[0]
    got = spend.refund(s, h.city.museum.id, alice.transfer_id, 30, key="r", now=RECENT + 80 * DAY)
    assert got.points == 30
    with pytest.raises(Refused):
        spend.refund(s, h.city.museum.id, alice.transfer_id, 1, key="r2", now=RECENT + 91 * DAY)
    s.rollback()


def test_the_scan_covers_a_table_added_later(s: Session, directory: KnownMyKeyIds) -> None:
    """A new table naming a citizen's account and a merchant (say, a receipts outbox) is
    looked through without being listed anywhere."""
    h = make_history(s, directory)
    outbox = Table(
        "points_test_receipts_outbox",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("citizen_account_id", ForeignKey("points_accounts.id")),
        Column("merchant_id", ForeignKey("points_merchants.id")),
        Column("created_at", UtcDateTime()),
    )
    try:
        outbox.create(s.connection())
        s.execute(
            outbox.insert().values(
                citizen_account_id=h.accounts["ALICE234"],
                merchant_id=h.city.museum.id,
                created_at=T0,
            )
        )
        s.commit()
        assert "points_test_receipts_outbox" in scan.covered(s)
        compact.compact(s, now=NOW)
        assert [f.table for f in scan.scan(s, now=NOW)] == ["points_test_receipts_outbox"]
        s.execute(outbox.delete())
        s.commit()
        assert scan.scan(s, now=NOW) == []
    finally:
        s.rollback()
        outbox.drop(s.connection())
        s.commit()
        Base.metadata.remove(outbox)


def test_project_donations_wait_for_the_settlement(
    app: Flask, s: Session, directory: KnownMyKeyIds
) -> None:
    """A project's donations are kept with their citizen until the project is settled;
    a missed project's returned donations are then compacted with their returns."""
    h = make_history(s, directory)
    who = Officer(h.city.muni.id, "officer")
    project = add_cause(
        s, who, code="BRIDGE", name="橋", description="", kind=CauseKind.PROJECT,
        goal_points=10_000, ends_at=T0 + 10 * DAY, miss_policy=MissPolicy.RETURN,
        fresh_days=30, now=T0,
    )  # fmt: skip
    causes.donate(s, project.id, "BOB23456", 40, key="p1", now=T0 + DAY)
    causes.donate(s, project.id, "ALICE234", 20, key="p2", now=T0 + 2 * DAY)
    compact.compact(s, now=T0 + 100 * DAY)  # the project is not settled yet
    assert {f.table for f in scan.scan(s, now=T0 + 100 * DAY)} >= {"points_transfers"}
    causes.settle_projects(s, now=T0 + 100 * DAY)  # missed: returned into the lots
    compact.compact(s, now=T0 + 200 * DAY)
    assert scan.scan(s, now=T0 + 200 * DAY) == []
    assert invariants.violations(s) == {}
    # A second settlement run returns nothing twice.
    again = causes.settle_projects(s, now=T0 + 201 * DAY)
    assert [(d.returned, d.returns) for d in again] == [(0, 0)]
    months = {(m.month, m.category): m for m in reports.citizen_months(s, h.accounts["BOB23456"])}
    crowd = months[("2025-04", "crowdfunding")]
    assert (crowd.paid, crowd.received) == (40, 0)
    s.rollback()


def test_an_interrupted_run_is_resumed(
    s: Session, directory: KnownMyKeyIds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped after its first batch (a deploy, a kill) leaves a consistent ledger,
    and the next run finishes the work."""
    make_history(s, directory)
    batches = compact._payments
    calls = []

    def stop_after_one(*args: object) -> object:
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return batches(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(compact, "_payments", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        compact.compact(s, now=NOW, batch=1)
    s.rollback()
    assert invariants.violations(s) == {}
    assert scan.scan(s, now=NOW) != []
    monkeypatch.setattr(compact, "_payments", batches)
    done = compact.compact(s, now=NOW, batch=1)
    assert done.payments == 5 and scan.scan(s, now=NOW) == []
    assert invariants.violations(s) == {}
    s.rollback()


def test_a_run_told_a_later_time_does_not_move_the_next_run_start(
    s: Session, directory: KnownMyKeyIds
) -> None:
    """`--now` in the future (a test, a mistake) compacts as of then, but the next real
    run still starts from the real clock's cut-off, so nothing written since is skipped."""
    h = make_history(s, directory)
    future = datetime.now(UTC) + 1000 * DAY
    compact.compact(s, now=future)
    muni = s.get(Municipality, h.city.muni.id)
    assert muni is not None and muni.compacted_until is not None
    assert muni.compacted_until <= datetime.now(UTC) - 90 * DAY
    s.rollback()
