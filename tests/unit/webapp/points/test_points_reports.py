"""Merchant settlement (totals, never people), its CSV, and the CLI jobs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from webapp.points import conversion, programs, reports, spend
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import InvalidInput

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)  # 18:00 JST on 1 April


def test_settlement_per_day_reproducible_from_a_cutoff(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    for who in ("ALICE234", "BOB23456"):
        programs.grant(s, world.volunteering.id, who, key=f"g-{who}", directory=directory, now=T0)
    a = spend.spend(s, world.museum.id, "ALICE234", 100, key="a", now=T0)
    spend.spend(
        s, world.museum.id, "BOB23456", 250, key="b", now=T0 + timedelta(hours=7)
    )  # 2 Apr JST
    spend.refund(s, world.museum.id, a.transfer_id, 40, key="ra", now=T0 + timedelta(hours=8))
    cutoff = T0 + timedelta(days=1)
    now = T0 + timedelta(days=2)
    report = reports.settlement(
        s, world.museum.id, date(2025, 4, 1), date(2025, 4, 3), cutoff=cutoff, now=now
    )
    assert report.days == [(date(2025, 4, 1), 1, 100, 0, 100), (date(2025, 4, 2), 1, 250, 40, 210)]
    assert (report.count, report.gross, report.refunds, report.net, report.final) == (
        2,
        350,
        40,
        310,
        True,
    )
    # A refund recorded after the cut-off does not change the report at that cut-off.
    spend.refund(s, world.museum.id, a.transfer_id, 60, key="rb", now=cutoff + timedelta(hours=1))
    again = reports.settlement(
        s, world.museum.id, date(2025, 4, 1), date(2025, 4, 3), cutoff=cutoff, now=now
    )
    assert again == report
    text = reports.settlement_csv(report)
    assert text.splitlines() == [
        "merchant,date,count,gross,refunds,net,cutoff",
        "MUSEUM1,2025-04-01,1,100,0,100,2025-04-02T18:00:00+09:00",
        "MUSEUM1,2025-04-02,1,250,40,210,2025-04-02T18:00:00+09:00",
        "MUSEUM1,total,2,350,40,310,2025-04-02T18:00:00+09:00",
    ]
    assert "ALICE234" not in text and "BOB23456" not in text
    later = reports.settlement(s, world.museum.id, date(2025, 4, 1), date(2025, 4, 3), now=now)
    assert later.refunds == 100  # without a cut-off: everything up to the period's end
    fresh = reports.settlement(s, world.museum.id, date(2025, 4, 1), date(2025, 4, 3), now=cutoff)
    assert not fresh.final


@pytest.mark.parametrize(
    ("start", "end"), [(date(2025, 4, 2), date(2025, 4, 1)), (date(2024, 1, 1), date(2025, 4, 1))]
)
def test_settlement_period_is_bounded(s: Session, world: City, start: date, end: date) -> None:
    with pytest.raises(InvalidInput):
        reports.settlement(s, world.museum.id, start, end, now=T0)


def test_cli_jobs_post_expire_and_check(
    app: Flask, s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    conversion.convert(
        s, world.partner, municipality_code="011002", citizen="ALICE234", partner_points=100,
        ref="R1", directory=directory, now=T0,
    )  # fmt: skip
    runner = app.test_cli_runner()
    later = (T0 + timedelta(days=15)).isoformat()
    result = runner.invoke(args=["points", "post-held", "--now", later])
    assert result.exit_code == 0 and "posted 1 conversion" in result.output
    result = runner.invoke(
        args=["points", "expire", "--now", (T0 + timedelta(days=400)).isoformat()]
    )
    assert result.exit_code == 0 and "expired 110 point(s) of 1 citizen(s)" in result.output
    result = runner.invoke(args=["points", "check"])
    assert result.exit_code == 0 and "invariants hold" in result.output
    result = runner.invoke(args=["points", "issue-key", str(world.partner.id)])
    assert result.exit_code == 0 and result.output.startswith("ick_")
    key_id = result.output.split("_")[1]
    assert runner.invoke(args=["points", "revoke-key", key_id]).exit_code == 0


def test_settlement_reads_the_period_in_two_queries(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    """A month's settlement is two grouped reads (payments, refunds), not two per day; a
    payment at 23:59 JST and one at 00:00 JST fall on their own Japanese days."""
    from sqlalchemy import event

    programs.grant(s, world.volunteering.id, "ALICE234", key="g", directory=directory, now=T0)
    late = datetime(2025, 4, 10, 14, 59, tzinfo=UTC)  # 23:59 JST on 10 April
    spend.spend(s, world.museum.id, "ALICE234", 30, key="a", now=late)
    spend.spend(s, world.museum.id, "ALICE234", 20, key="b", now=late + timedelta(minutes=1))
    seen: list[str] = []

    def capture(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    engine = s.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        report = reports.settlement(
            s, world.museum.id, date(2025, 4, 1), date(2025, 5, 1), now=T0 + timedelta(days=60)
        )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(report.days) == 30
    assert [d for d in report.days if d[1]] == [
        (date(2025, 4, 10), 1, 30, 0, 30),
        (date(2025, 4, 11), 1, 20, 0, 20),
    ]
    grouped = [q for q in seen if "GROUP BY" in q.upper()]
    assert len(grouped) == 2
