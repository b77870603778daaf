"""Retention on PostgreSQL (issue 18): `compact` past the refund window keeps monthly
totals, settlements and the municipality's report, the invariants and a clean privacy
scan, and runs beside live spends without changing what they write."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session, sessionmaker

from tests.support.points_retention import (
    CITIZENS,
    DAY,
    NOW,
    RECENT,
    make_history,
    monthly,
    observe,
)
from webapp.points import invariants, programs, reports, spend
from webapp.points.directory import KnownMyKeyIds
from webapp.points.retention import compact, scan

DIRECTORY = KnownMyKeyIds(set(CITIZENS) | {"DAVE2345"})


def test_compact_past_the_window_on_postgres(pg_sessions: sessionmaker[Session]) -> None:
    with pg_sessions() as s:
        h = make_history(s, DIRECTORY)
        before, months_before = observe(s, h), monthly(s, h)
        assert {"points_transfers", "points_lot_moves"} <= {f.table for f in scan.scan(s, now=NOW)}
        done = compact.compact(s, now=NOW, batch=3)
        assert (done.payments, done.grants) == (6, 4)
        assert observe(s, h) == before
        assert monthly(s, h) == months_before
        assert invariants.violations(s) == {}
        assert scan.scan(s, now=NOW) == []
        again = compact.compact(s, now=NOW)
        assert (again.payments, again.grants) == (0, 0)
        s.rollback()


def test_compact_beside_live_spends(pg_sessions: sessionmaker[Session]) -> None:
    """Spends and refunds of recent payments go on while old history is compacted, in
    small batches: none fails, none waits on compaction, and everything adds up."""
    with pg_sessions() as s:
        h = make_history(s, DIRECTORY)
        programs.grant(s, h.city.volunteering.id, "DAVE2345", key="v-d", directory=DIRECTORY,
                       now=RECENT)  # fmt: skip
        # More old history to compact: many small payments a few months ago.
        for i in range(60):
            who = CITIZENS[i % 3]
            spend.spend(s, h.shop_id, who, 1, key=f"old-{i}", now=RECENT - 100 * DAY)
        s.commit()
    stop = threading.Event()
    paid: list[int] = []
    refunded: list[int] = []

    def live(n: int) -> None:
        with pg_sessions() as ls:
            i = 0
            while not stop.is_set() and i < 200:
                who = ("ALICE234", "DAVE2345")[n % 2]
                r = spend.spend(ls, h.city.museum.id, who, 1, key=f"live-{n}-{i}", now=NOW)
                if i % 5 == 0:
                    spend.refund(ls, h.city.museum.id, r.transfer_id, 1, key=f"lr-{n}-{i}", now=NOW)
                    refunded.append(1)
                paid.append(1)
                i += 1

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(live, n) for n in range(2)]
        with pg_sessions() as cs:
            done = compact.compact(cs, now=NOW, batch=5)
        stop.set()
        for f in futures:
            f.result()
    assert done.payments == 66 and paid
    with pg_sessions() as s:
        assert invariants.violations(s) == {}
        assert scan.scan(s, now=NOW) == []
        day = NOW.astimezone(reports.JST).date()
        report = reports.settlement(s, h.city.museum.id, day, day + DAY, now=NOW + DAY)
        assert report.gross == len(paid) and report.refunds == len(refunded)
        s.rollback()
