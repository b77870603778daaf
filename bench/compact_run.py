"""How fast `flask points compact` rewrites old payments on PostgreSQL, and how long its
longest batch (one transaction, its row locks) lasts:

    .venv/bin/python -m bench.compact_run [--spends 5000] [--pg-url URL]

Writes N one-point spends of 200 citizens at two merchants in a schema of its own, moves
the clock past the window, compacts, re-runs (a day later: nothing to do), and runs the
privacy scan and the invariants. Prints one JSON line (details, not a bench line: its name
is not bench_*.py, so `make bench` does not run it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from webapp.db import Base, make_engine
from webapp.points import admin, invariants, programs, spend
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.models import POINTS_TABLES, MerchantCategory
from webapp.points.retention import compact, scan

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run(pg_url: str, spends: int, batch: int) -> dict[str, Any]:
    """Write the history, compact it, and measure."""
    schema = f"bench_compact_{uuid.uuid4().hex[:8]}"
    server = create_engine(pg_url)
    with server.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    engine = make_engine(f"{pg_url}{sep}options=-csearch_path%3D{schema}")
    try:
        Base.metadata.create_all(engine, tables=POINTS_TABLES)
        with Session(engine) as s:
            city = build_city(s, now=T0, budget=10**9)
            shop = admin.create_merchant(
                s, city.muni.id, "SHOP1", "shop", MerchantCategory.SHOP, now=T0
            )
            people = [f"P{i:07d}" for i in range(200)]
            for p in people:
                programs.grant(
                    s, city.volunteering.id, p, key=f"g{p}", directory=AnyMyKeyId(), now=T0
                )
            for i in range(spends):
                merchant = (city.museum.id, shop.id)[i % 2]
                at = T0 + DAY + timedelta(seconds=i)
                spend.spend(s, merchant, people[i % 200], 1, key=f"s{i}", now=at)
        longest = [0.0]
        payments = compact._payments

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return payments(*args)
            finally:
                longest[0] = max(longest[0], time.perf_counter() - started)

        compact._payments = timed  # type: ignore[assignment]
        try:
            with Session(engine) as s:
                started = time.perf_counter()
                done = compact.compact(s, now=T0 + 100 * DAY, batch=batch)
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                again = compact.compact(s, now=T0 + 101 * DAY, batch=batch)
                rerun = time.perf_counter() - started
                pairs = scan.scan(s, now=T0 + 100 * DAY)
                broken = invariants.violations(s)
        finally:
            compact._payments = payments  # type: ignore[assignment]
        return {
            "spends": spends,
            "batch": batch,
            "compacted": done.payments,
            "summaries": done.summaries,
            "seconds": round(seconds, 3),
            "per_second": round(done.payments / seconds),
            "longest_batch_ms": round(longest[0] * 1000, 1),
            "rerun_next_day_s": round(rerun, 3),
            "rerun_compacted": again.payments,
            "pairs_left": len(pairs),
            "invariants_broken": len(broken),
        }
    finally:
        engine.dispose()
        with server.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        server.dispose()


def main() -> None:
    """Parse the arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spends", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=compact.BATCH)
    parser.add_argument("--pg-url", default=os.environ.get("ICHIMAI_BENCH_PG_URL", DEFAULT_PG))
    args = parser.parse_args()
    print(json.dumps(run(args.pg_url, args.spends, args.batch)))


if __name__ == "__main__":
    main()
