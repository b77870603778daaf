"""Ledger transfers count in /metrics once their transaction commits, never before, and a
rolled-back one never (webapp/ops/__init__.py, webapp/points/ledger/write.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from webapp.ops.metrics import LEDGER_TRANSFERS
from webapp.points import programs
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.ledger.write import WRITTEN_KINDS


def counted() -> float:
    return sum(
        sample.value
        for family in LEDGER_TRANSFERS.collect()
        for sample in family.samples
        if sample.name == "ichimai_ledger_transfers_total"
    )


def test_a_committed_grant_counts_once(
    s: Session, world: City, directory: KnownMyKeyIds, t0: datetime
) -> None:
    before = counted()
    programs.grant(s, world.volunteering.id, "ALICE234", key="m1", directory=directory, now=t0)
    assert counted() == before + 1  # grant commits its own transaction
    programs.grant(s, world.volunteering.id, "ALICE234", key="m1", directory=directory, now=t0)
    assert counted() == before + 1  # a replay writes nothing


def test_written_but_rolled_back_counts_nothing(s: Session) -> None:
    before = counted()
    s.connection()  # a transaction under way
    s.info[WRITTEN_KINDS] = ["grant"]  # as ledger.write notes what it wrote
    s.rollback()
    assert counted() == before
    assert WRITTEN_KINDS not in s.info
