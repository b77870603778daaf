"""Figures at a country's scale: `make bench-scale` (not part of `make bench`).

    .venv/bin/python -m bench.scale_run [--ids 1000000 10000000] [--rebuild] [--only NAME...]

For each size, the database bench_scale_<size> (bench/scale_data.py) is used as it is
when complete (the builder marks it so), else built first. Then one JSON line per figure,
each with a baseline measured in the same run on the same database:

    {"bench": "scale_counter_lookup_p99_ms_1m", "value", "unit", "baseline", "ratio",
     "ids": 1000000, "goal": ...}

Names carry the size (`_1m`, `_10m`) so a ledger keyed by name keeps both; `ids` says it.

- scale_counter_lookup_p99_ms: a counter tap's server side, card key -> library number,
  through webapp.counter.services.lookup_at as the counter's push runs it: in the tap's
  session, which has read the terminal's provider, one read of the binding and the link
  (the day's lookup count added in the worker, flushed every 10 s by its own thread);
  `tap_p99` beside it: the whole session (BEGIN, the provider, the lookup, ROLLBACK).
  Baseline: the same indexed SELECT (binding join link) with psycopg. Goal: ratio <= 2.
- scale_facility_search_p99_ms: the kiosk's facility search (webapp.kiosk.purposes
  .facilities, q=...) over 5,000 providers, a facility's reading typed a character at a
  time (each prefix one request); baseline: its LIKE query alone, psycopg. Goal <= 50 ms.
- scale_kiosk_me_p99_ms: a citizen at the kiosk: the `me` step (MyKey ID, links, the
  town's facilities) and the `points` step (balances, lots, latest transfers); baseline:
  the same reads as plain SELECTs, psycopg. Goal <= 20 ms.
- scale_municipality_report_s: webapp.points.reports.municipality_summary for the
  largest town (the most citizens); worst of the runs. Goal <= 1 s.
- scale_settlement_s: webapp.points.reports.settlement of the largest town's bus
  operator (half the town's spending) for one month; worst of the runs. Goal <= 1 s.
  Baselines of both: the same totals as one plain SELECT, psycopg.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench import scale_data
from webapp.cardflow.purposes import FlowContext
from webapp.counter import services as counter
from webapp.db import make_engine
from webapp.jpki import VerifiedCard, card_key
from webapp.kiosk import purposes as kiosk
from webapp.kiosk.points import my_points
from webapp.points import reports
from webapp.providers.models import Provider
from webapp.terminals.models import Terminal

SIZES = (1_000_000, 10_000_000)
MONTH = (date(2026, 6, 1), date(2026, 7, 1))  # within the data's year
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def note(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON lines)."""
    print(message, file=sys.stderr, flush=True)


def emit(name: str, ids: int, value: float, unit: str, baseline: float, **extra: Any) -> None:
    """One result line."""
    print(
        json.dumps(
            {
                "bench": f"{name}_{size_tag(ids)}",
                "value": round(value, 3),
                "unit": unit,
                "baseline": round(baseline, 3),
                "ratio": round(value / baseline, 3) if baseline else None,
                "ids": ids,
                **extra,
            }
        ),
        flush=True,
    )


def size_tag(ids: int) -> str:
    """1m, 10m; the plain number for other sizes."""
    return f"{ids // 1_000_000}m" if ids % 1_000_000 == 0 else str(ids)


def p99(samples: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def p50(samples: list[float]) -> float:
    """The median, rounded for a result line."""
    return round(statistics.median(samples), 3)


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call took."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def complete(url: str, ids: int) -> bool:
    """Whether the database exists and the builder finished it for `ids` IDs."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                " WHERE datname = current_database()"
            ).fetchone()
    except psycopg.OperationalError:
        return False
    return bool(row) and row[0] == scale_data.marker(ids)


class Fixture:
    """What the runs need from one database: citizens, their library, a kiosk, towns."""

    def __init__(self, url: str, ids: int, rng: random.Random) -> None:
        self.url, self.ids, self.rng = url, ids, rng
        self.engine = make_engine(scale_data.sa_url(url))
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.conn = psycopg.connect(url, autocommit=True)
        row = self.conn.execute(
            "SELECT municipality_id, COUNT(*) FROM points_accounts WHERE kind = 'citizen'"
            " GROUP BY municipality_id ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        self.town, self.town_citizens = int(row[0]), int(row[1])
        self.bus = self.conn.execute(
            "SELECT id FROM points_merchants WHERE municipality_id = %s AND category = 'transport'",
            (self.town,),
        ).fetchone()[0]  # type: ignore[index]

    def citizen(self) -> tuple[str, bytes, int]:
        """A random citizen: MyKey ID, card key (as the verifier computes it), library."""
        i = self.rng.randrange(self.ids)
        key = card_key(scale_data.CARD_KEY_SECRET, scale_data.ISSUER_DER, scale_data.card_serial(i))
        mykey = scale_data.mykey_id(i)
        row = self.conn.execute(
            "SELECT provider_id FROM service_links WHERE mykey_id = %s ORDER BY id LIMIT 1",
            (mykey,),
        ).fetchone()
        assert row is not None
        return mykey, key, int(row[0])

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def counter_lookup(f: Fixture, samples: int) -> None:
    """Card key -> library number: the platform's lookup vs the indexed SELECT.

    Ours is timed as a counter tap runs it (webapp.counter.push): in the tap's session,
    which has read the terminal's provider (untimed here: the tap's, not the lookup's),
    `counter.lookup_at` answers with one read. `tap_p99` beside it times the whole of
    that session too: opening it (BEGIN), the provider's read, the lookup, closing it
    (ROLLBACK)."""
    card_not_after = datetime(2030, 3, 31, tzinfo=UTC)
    ours, base, taps = [], [], []
    sql = (
        "SELECT l.customer_number, l.accepted_terms_version, l.verification"
        " FROM card_bindings b JOIN service_links l ON l.mykey_id = b.mykey_id"
        " WHERE b.card_key = %s AND l.provider_id = %s"
    )
    for n in range(samples + samples // 10):
        _, key, provider_id = f.citizen()
        card = VerifiedCard(key, card_not_after, True, "scale")
        lookup_ms = 0.0

        def platform(key: bytes = key, provider_id: int = provider_id, card: Any = card) -> None:
            nonlocal lookup_ms
            with f.sessions() as s:
                provider = s.get(Provider, provider_id)  # the tap's read (counter.push)
                t = time.perf_counter()
                found, shown = counter.lookup_at(s, provider_id, card)
                lookup_ms = (time.perf_counter() - t) * 1000
                assert shown.number and found is provider

        def plain(key: bytes = key, provider_id: int = provider_id) -> None:
            assert f.conn.execute(sql, (key, provider_id)).fetchone()

        # Alternate which goes first, so neither always finds the pages warm.
        a, b = (platform, plain) if n % 2 else (plain, platform)
        ta, tb = timed(a), timed(b)
        if n >= samples // 10:  # the first tenth warms up
            ours.append(lookup_ms)
            taps.append(ta if a is platform else tb)
            base.append(tb if a is platform else ta)
    emit(
        "scale_counter_lookup_p99_ms", f.ids, p99(ours), "ms", p99(base),
        samples=len(ours), p50=p50(ours), baseline_p50=p50(base),
        tap_p99=round(p99(taps), 3), tap_p50=p50(taps), goal="ratio <= 2",
    )  # fmt: skip


def kiosk_context(s: Session, f: Fixture, provider_id: int) -> FlowContext:
    """A kiosk of the citizen's library (its town's facilities first)."""
    terminal = s.scalar(
        select(Terminal).where(Terminal.provider_id == provider_id, Terminal.kind == "kiosk")
    )
    assert terminal is not None
    return FlowContext(s, terminal, "scale", {}, None, time.time())  # type: ignore[arg-type]


def facility_search(f: Fixture, targets: int) -> None:
    """A reading typed a character at a time at a kiosk; each prefix is one request."""
    ours, base = [], []
    sql = (
        "SELECT id, name_ja, name_kana, kind, code, municipality_name, number_rule"
        " FROM providers WHERE search_text LIKE %s"
        " ORDER BY (municipality_code = %s) DESC, (search_name LIKE %s) DESC, search_name, id"
        " LIMIT 10"
    )
    readings = [
        r[0]
        for r in f.conn.execute(
            "SELECT name_kana FROM providers ORDER BY id %% 97, id LIMIT %s", (targets,)
        )
    ]
    for reading in readings:
        mykey, _, library = f.citizen()
        for n in range(1, len(reading) + 1):
            typed = reading[:n]
            with f.sessions() as s:
                ctx = kiosk_context(s, f, library)
                near = s.get(Provider, library).municipality_code  # type: ignore[union-attr]
                t = time.perf_counter()
                found = kiosk.facilities(ctx, {"mykey": mykey}, {"q": typed}, "ja")
                ours.append((time.perf_counter() - t) * 1000)
            assert found["total"] >= 1
            args = (f"%{typed}%", near, f"{typed}%")
            base.append(timed(lambda args=args: f.conn.execute(sql, args).fetchall()))
    emit(
        "scale_facility_search_p99_ms", f.ids, p99(ours), "ms", p99(base),
        samples=len(ours), p50=p50(ours), baseline_p50=p50(base), goal="value <= 50",
    )  # fmt: skip


def kiosk_me(f: Fixture, samples: int) -> None:
    """The citizen's MyKey ID, links and points at a kiosk (the `me` and `points` steps)."""
    ours, base = [], []
    reads = (
        "SELECT id, rerolls_used FROM mykey_ids WHERE id = %(m)s",
        "SELECT l.*, p.name_ja FROM service_links l JOIN providers p ON p.id = l.provider_id"
        " WHERE l.mykey_id = %(m)s ORDER BY l.id",
        "SELECT id, name_ja, name_kana, kind, code FROM providers"
        " WHERE municipality_code = %(c)s ORDER BY search_name, id LIMIT 30",
        "SELECT a.*, m.code, m.name FROM points_accounts a JOIN points_municipalities m"
        " ON m.id = a.municipality_id WHERE a.owner = %(m)s AND a.kind = 'citizen'",
        "SELECT l.* FROM points_lots l JOIN points_accounts a ON a.id = l.account_id"
        " WHERE a.owner = %(m)s AND a.kind = 'citizen' AND l.remaining > 0"
        " ORDER BY l.expires_at, l.id",
        "SELECT t.* FROM points_transfers t JOIN points_accounts a"
        " ON a.id IN (t.debit_account_id, t.credit_account_id)"
        " WHERE a.owner = %(m)s AND a.kind = 'citizen' ORDER BY t.id DESC LIMIT 20",
    )
    for n in range(samples + samples // 10):
        mykey, _, library = f.citizen()
        with f.sessions() as s:
            ctx = kiosk_context(s, f, library)
            town = s.get(Provider, library).municipality_code  # type: ignore[union-attr]
            t = time.perf_counter()
            shown = kiosk.me(ctx, {"mykey": mykey}, "ja")
            points = my_points(s, mykey)
            took = (time.perf_counter() - t) * 1000
        assert shown["links"] and points

        def plain(m: str = mykey, c: str = town) -> None:
            for sql in reads:
                f.conn.execute(sql, {"m": m, "c": c}).fetchall()

        tb = timed(plain)
        if n >= samples // 10:
            ours.append(took)
            base.append(tb)
    emit(
        "scale_kiosk_me_p99_ms", f.ids, p99(ours), "ms", p99(base),
        samples=len(ours), p50=p50(ours), baseline_p50=p50(base), goal="value <= 20",
    )  # fmt: skip


def municipality_report(f: Fixture, runs: int) -> None:
    """The largest town's outstanding-points report."""
    ours, base = [], []
    sql = (
        "SELECT kind, SUM(balance), SUM(debits_pending) FROM points_accounts"
        " WHERE municipality_id = %s AND kind = ANY(%s) GROUP BY kind"
    )
    kinds = list(reports.SYSTEM_KINDS)
    # What the report's accounts read cost before it named the kinds (docs/scale.md).
    scan = max(
        timed(
            lambda: f.conn.execute(
                "SELECT * FROM points_accounts WHERE municipality_id = %s AND kind <> 'citizen'",
                (f.town,),
            ).fetchall()
        )
        / 1000
        for _ in range(3)
    )
    for _ in range(runs):
        with f.sessions() as s:
            t = time.perf_counter()
            summary = reports.municipality_summary(s, f.town)
            ours.append(time.perf_counter() - t)
        assert summary.outstanding > 0
        base.append(timed(lambda: f.conn.execute(sql, (f.town, kinds)).fetchall()) / 1000)
    emit(
        "scale_municipality_report_s", f.ids, max(ours), "s", max(base),
        runs=runs, town_citizens=f.town_citizens, kind_not_citizen_s=round(scan, 3),
        goal="value <= 1",
    )  # fmt: skip


def settlement(f: Fixture, runs: int) -> None:
    """The largest town's bus operator's settlement for one month."""
    ours, base = [], []
    sql = (
        "SELECT (t.created_at AT TIME ZONE 'Asia/Tokyo')::date, t.kind, COUNT(*), SUM(amount)"
        " FROM points_transfers t JOIN points_merchants m ON m.id = %(m)s"
        " WHERE ((t.credit_account_id = m.account_id AND t.kind = 'spend')"
        "     OR (t.debit_account_id = m.account_id AND t.kind = 'refund'))"
        " AND t.status = 'posted' AND t.created_at >= %(lo)s AND t.created_at < %(hi)s"
        " GROUP BY 1, 2"
    )
    lo = datetime.combine(MONTH[0], datetime.min.time(), reports.JST)
    hi = datetime.combine(MONTH[1], datetime.min.time(), reports.JST)
    count = 0
    for _ in range(runs):
        with f.sessions() as s:
            t = time.perf_counter()
            report = reports.settlement(s, f.bus, *MONTH, now=NOW)
            ours.append(time.perf_counter() - t)
        count = report.count
        args = {"m": f.bus, "lo": lo, "hi": hi}
        base.append(timed(lambda args=args: f.conn.execute(sql, args).fetchall()) / 1000)
    emit(
        "scale_settlement_s", f.ids, max(ours), "s", max(base),
        runs=runs, payments=count, goal="value <= 1",
    )  # fmt: skip


# Each figure, run with the size's fixture and the --samples asked for (the search and the
# reports take fewer: each of their runs is a whole search or report).
FIGURES: dict[str, Callable[[Fixture, int], None]] = {
    "counter_lookup": counter_lookup,
    "facility_search": lambda f, _samples: facility_search(f, 30),
    "kiosk_me": kiosk_me,
    "municipality_report": lambda f, _samples: municipality_report(f, 20),
    "settlement": lambda f, _samples: settlement(f, 20),
}


def main(argv: list[str] | None = None) -> int:
    """Build what is missing, then measure each size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--rebuild", action="store_true", help="build even when complete")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--only", nargs="+", choices=sorted(FIGURES), help="these figures only (default: all)"
    )
    args = parser.parse_args(argv)
    chosen = [run for name, run in FIGURES.items() if not args.only or name in args.only]
    for ids in args.ids:
        url = scale_data.database_url(ids)
        if args.rebuild or not complete(url, ids):
            note(f"scale_run: building {url} ({ids:,} IDs)")
            scale_data.main(["--ids", str(ids)])
        f = Fixture(url, ids, random.Random(ids))
        try:
            for run in chosen:
                run(f, args.samples)
        finally:
            f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
