"""Ledger throughput vs pgbench TPC-B on the same PostgreSQL server, and on embedded SQLite.

    .venv/bin/python -m bench.bench_ledger [--seconds 10] [--pg-url URL] [--only NAME ...]

Prints one JSON line per figure: {"bench", "value", "unit", "baseline", "ratio"}, and on
PostgreSQL also `client_cpu_ms` (the client processes' CPU time, user and system, from
time.process_time over the run, per transfer), `server_cpu_ms` (the CPU time of the
PostgreSQL backends serving those clients, from /proc/<pid>/stat before and after the run,
per transfer; WAL writer and checkpointer not included; null when /proc is not readable),
`pgbench_before` and `pgbench_after`.

What is measured: transfers per second of `programs.grant`, the full service a staff page
calls (program read, idempotency key, citizen account update, transfer and lot inserts,
budget update, commit), each grant in a fresh session as a request would have it; on
PostgreSQL it takes the path a staff page takes: one call of the points_grant_v1 function
on a lane connection (webapp.points.grant_pg, webapp.pglane). Clients
are separate processes, each with one connection, so the GIL does not cap the client side;
pgbench runs in the same run on a scratch database with as many clients (-j 2 threads, the
machine's cores) and scale 32, at least one branch row per client as its manual advises.

- ledger_tps_cN: N clients, grants from 64 programs to 20,000 citizens (little contention).
- ledger_hot_tps_c8: 8 clients, every grant from one program: one hot budget row (baseline
  pgbench at 8 clients).

Each baseline is the mean of a pgbench run right before and one right after ours.
- ledger_tps_sqlite: one writer on a SQLite file (WAL, the engine's pragmas); baseline: raw
  sqlite3 doing the same statements (BEGIN IMMEDIATE; SELECT program; UPDATE citizen;
  INSERT transfer; INSERT lot; UPDATE budget; COMMIT) with the same pragmas.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import Base, make_engine
from webapp.points import programs
from webapp.points.demo import build_city
from webapp.points.directory import AnyMyKeyId
from webapp.points.models import POINTS_TABLES, ProgramCategory

T0 = datetime(2025, 4, 1, tzinfo=UTC)
CITIZENS = 20_000
PROGRAMS = 64
PGBENCH_SCALE = 32
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def emit(name: str, value: float, baseline: float, **extra: float | None) -> None:
    """One result line (`extra`: figures that explain it, after the five keys)."""
    ratio = round(value / baseline, 3) if baseline else None
    print(
        json.dumps(
            {
                "bench": name,
                "value": round(value, 1),
                "unit": "tps",
                "baseline": round(baseline, 1),
                "ratio": ratio,
                **extra,
            }
        ),
        flush=True,
    )


def note(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON lines)."""
    print(message, file=sys.stderr, flush=True)


# --- PostgreSQL -------------------------------------------------------------------------


def admin_exec(url: str, sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(sql))
    engine.dispose()


def prepare_ledger(url: str) -> list[int]:
    """Tables, a city, 64 funded programs and 20,000 citizen accounts; returns program ids."""
    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=POINTS_TABLES)
    with Session(engine) as s:
        city = build_city(s, budget=10**12, now=T0)
        ids = [city.volunteering.id]
        for n in range(1, PROGRAMS):
            program = programs.create_program(
                s, city.muni.id, f"P{n:02d}", f"事業{n}", ProgramCategory.EVENT,
                points_per_grant=100, expiry_days=365, budget=10**12, now=T0,
            )  # fmt: skip
            ids.append(program.id)
        # Citizens' accounts exist already, as they would after their first grant; opened
        # here in bulk (empty accounts change no balance) so the run measures transfers.
        s.execute(
            text(
                "INSERT INTO points_accounts (municipality_id, kind, owner, balance,"
                " debits_pending, credits_pending, created_at)"
                " VALUES (:m, 'citizen', :o, 0, 0, 0, :t)"
            ),
            [{"m": city.muni.id, "o": citizen(i), "t": T0} for i in range(CITIZENS)],
        )
        s.commit()
    engine.dispose()
    return ids


def citizen(i: int) -> str:
    """The i-th benchmark MyKey ID."""
    return f"B{i:07d}"


def client(
    url: str,
    program_ids: list[int],
    tag: str,
    seconds: float,
    go: Any,
    ready: mp.Queue[str],
    out: mp.Queue[tuple[int, float]],
    release: Any,
) -> None:
    """One client process: connect, say ready, then grant as fast as it can for `seconds`
    from the moment the parent gives the start time (all clients start together); then
    report, and stay connected until `release` (the parent reads its backends' CPU time
    while they still exist)."""
    # The app's engine (webapp.db.make_engine), unless ICHIMAI_BENCH_PRE_PING=0 asks for
    # a plain engine without its ping of connections checked out after an idle spell.
    if os.environ.get("ICHIMAI_BENCH_PRE_PING", "1") == "0":
        engine = create_engine(url, pool_size=1)
    else:
        engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with engine.connect() as connection:  # the connection is open before the clock runs
        connection.execute(text("SELECT 1"))
    directory = AnyMyKeyId()
    rng = random.Random(tag)
    ready.put(tag)
    go.wait()
    start = go.start.value
    while time.time() < start:
        time.sleep(0.0005)
    done = 0
    end = start + seconds
    cpu = time.process_time()
    while time.time() < end:
        with sessions() as s:
            programs.grant(
                s, rng.choice(program_ids), citizen(rng.randrange(CITIZENS)),
                key=f"{tag}-{done}", directory=directory, now=T0,
            )  # fmt: skip
        done += 1
    cpu = time.process_time() - cpu
    out.put((done, cpu))
    release.wait()
    engine.dispose()


class _Go:
    """A start signal with the start time (an Event and a shared double)."""

    def __init__(self, ctx: Any) -> None:
        self.event = ctx.Event()
        self.start = ctx.Value("d", 0.0)

    def wait(self) -> None:
        self.event.wait()


def run_clients(
    url: str, program_ids: list[int], clients: int, seconds: float, tag: str
) -> tuple[float, float, float | None]:
    """Transfers per second of `clients` processes, counted over the same window, the
    clients' CPU time per transfer in milliseconds, and the CPU time of the server
    processes serving them (their backends) per transfer (None: /proc not readable)."""
    ctx = mp.get_context("spawn")
    out: mp.Queue[tuple[int, float]] = ctx.Queue()
    ready: mp.Queue[str] = ctx.Queue()
    go = _Go(ctx)
    release = ctx.Event()
    procs = [
        ctx.Process(
            target=client,
            args=(url, program_ids, f"{tag}{n}", seconds, go, ready, out, release),
        )
        for n in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)
    database = make_url(url).database or ""
    server_before = backends_cpu(database)
    go.start.value = time.time() + 0.5
    go.event.set()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    server_after = backends_cpu(database)
    release.set()
    for p in procs:
        p.join()
    total = sum(done for done, _ in results)
    cpu = sum(cpu for _, cpu in results)
    server = None
    if server_before is not None and server_after is not None and total:
        # Backends present at both reads (a client's connections are open before the start
        # and closed after the release); one that came and went in between is not counted.
        spent = sum(
            t - server_before[pid] for pid, t in server_after.items() if pid in server_before
        )
        server = spent / total * 1000
    return total / seconds, (cpu / total * 1000 if total else 0.0), server


def backends_cpu(database: str) -> dict[int, float] | None:
    """CPU seconds (user + system) of each PostgreSQL backend connected to `database`, from
    /proc (the server runs on this machine); None when /proc cannot be read."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    marker = f" {database} ".encode()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if not cmdline.startswith(b"postgres: ") or marker not in cmdline:
                continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # gone, or not ours to read
        found[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return found or None


def pgbench_bin() -> str:
    """The pgbench executable (PATH, then Debian's versioned directories)."""
    found = shutil.which("pgbench")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(candidate)
    raise SystemExit("pgbench not found: apt-get install postgresql-client")


def pgbench(url: str, clients: int, seconds: float) -> float:
    """TPC-B tps of pgbench with `clients` clients."""
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    threads = str(min(clients, 2))
    result = subprocess.run(
        [
            pgbench_bin(),
            *args,
            "-c",
            str(clients),
            "-j",
            threads,
            "-T",
            str(int(seconds)),
            "-n",
            u.database or "",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"tps = ([0-9.]+)", result.stdout)
    if match is None:
        raise SystemExit(f"pgbench said: {result.stdout} {result.stderr}")
    return float(match.group(1))


def pgbench_init(url: str) -> None:
    """pgbench -i at the chosen scale."""
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    subprocess.run(
        [pgbench_bin(), *args, "-i", "-q", "-s", str(PGBENCH_SCALE), u.database or ""],
        capture_output=True,
        check=True,
    )


def bench_postgres(base_url: str, seconds: float, only: set[str]) -> None:
    """The four PostgreSQL figures, each against pgbench in this same run."""
    suffix = os.getpid()
    ledger_db, pgbench_db = f"ichimai_bench_ledger_{suffix}", f"ichimai_bench_pgbench_{suffix}"
    u = make_url(base_url)
    ledger_url = u.set(database=ledger_db).render_as_string(hide_password=False)
    pgbench_url = u.set(database=pgbench_db).render_as_string(hide_password=False)
    for db in (ledger_db, pgbench_db):
        admin_exec(base_url, f'CREATE DATABASE "{db}"')
    try:
        note("preparing the ledger database and pgbench -i ...")
        program_ids = prepare_ledger(ledger_url)
        pgbench_init(pgbench_url)
        for name, clients, ids in (
            ("ledger_tps_c1", 1, program_ids),
            ("ledger_tps_c8", 8, program_ids),
            ("ledger_tps_c32", 32, program_ids),
            ("ledger_hot_tps_c8", 8, program_ids[:1]),
        ):
            if only and name not in only:
                continue
            # pgbench right before and right after ours, averaged: the machine's load
            # drifts, and both sides should see the same drift.
            before = pgbench(pgbench_url, clients, seconds)
            value, cpu_ms, server_ms = run_clients(ledger_url, ids, clients, seconds, name)
            after = pgbench(pgbench_url, clients, seconds)
            note(f"{name}: {value:.0f} tps; pgbench TPC-B c{clients}: {before:.0f} / {after:.0f}")
            emit(
                name, value, (before + after) / 2, client_cpu_ms=round(cpu_ms, 3),
                server_cpu_ms=None if server_ms is None else round(server_ms, 3),
                pgbench_before=round(before, 1), pgbench_after=round(after, 1),
            )  # fmt: skip
    finally:
        for db in (ledger_db, pgbench_db):
            admin_exec(base_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# --- SQLite -------------------------------------------------------------------------------


def bench_sqlite(seconds: float) -> None:
    """One writer: the ledger's grant vs raw sqlite3 statements of the same shape.

    The two alternate in slices of a second, so both see the same disk (fsync latency
    on a shared machine drifts more than the difference being measured).
    """
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/ledger.db")
        Base.metadata.create_all(engine, tables=POINTS_TABLES)
        sessions = sessionmaker(engine, expire_on_commit=False)
        with sessions() as s:
            program_id = build_city(s, budget=10**12, now=T0).volunteering.id
        directory = AnyMyKeyId()
        rng = random.Random(1)
        raw = RawSqlite(Path(tmp) / "raw.db")
        ours = theirs = 0
        for _ in range(max(1, int(seconds))):
            end = time.time() + 1.0
            while time.time() < end:
                with sessions() as s:
                    programs.grant(
                        s, program_id, citizen(rng.randrange(2000)), key=f"s{ours}",
                        directory=directory, now=T0,
                    )  # fmt: skip
                ours += 1
            theirs += raw.run_for(1.0)
        engine.dispose()
        raw.close()
        emit("ledger_tps_sqlite", ours / int(seconds), theirs / int(seconds))


class RawSqlite:
    """The baseline: the ledger's statements for a grant through sqlite3, same pragmas."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.executescript(
            """
            CREATE TABLE program (id INTEGER PRIMARY KEY, account_id INT, points INT);
            CREATE TABLE account (id INTEGER PRIMARY KEY, owner TEXT UNIQUE, balance INT);
            CREATE TABLE transfer (id INTEGER PRIMARY KEY, debit INT, credit INT,
                                   amount INT, key TEXT UNIQUE, created_at TEXT);
            CREATE TABLE lot (id INTEGER PRIMARY KEY, account_id INT, transfer_id INT,
                              amount INT, remaining INT, expires_at TEXT);
            INSERT INTO account (id, owner, balance) VALUES (1, '', 1000000000000);
            INSERT INTO program VALUES (1, 1, 500);
            """
        )
        self.db.executemany(
            "INSERT INTO account (owner, balance) VALUES (?, 0)",
            [(citizen(i),) for i in range(2000)],
        )
        self.rng = random.Random(1)
        self.done = 0

    def run_for(self, seconds: float) -> int:
        """Grants done in `seconds`."""
        db, n, end = self.db, 0, time.time() + seconds
        while time.time() < end:
            db.execute("BEGIN IMMEDIATE")
            account, points = db.execute(
                "SELECT account_id, points FROM program WHERE id = 1"
            ).fetchone()
            (cid,) = db.execute(
                "UPDATE account SET balance = balance + ? WHERE owner = ? RETURNING id",
                (points, citizen(self.rng.randrange(2000))),
            ).fetchone()
            (tid,) = db.execute(
                "INSERT INTO transfer (debit, credit, amount, key, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (account, cid, points, f"r{self.done}", "2025-04-01 00:00:00.000000"),
            ).fetchone()
            db.execute(
                "INSERT INTO lot (account_id, transfer_id, amount, remaining, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (cid, tid, points, points, "2025-09-28 00:00:00.000000"),
            )
            db.execute(
                "UPDATE account SET balance = balance - ? WHERE id = ? AND balance >= ?",
                (points, account, points),
            )
            db.execute("COMMIT")
            n += 1
            self.done += 1
        return n

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


def main() -> None:
    """Run the figures asked for (all by default)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--pg-url", default=os.environ.get("ICHIMAI_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--only", nargs="*", default=[], help="names of the figures to run")
    args = parser.parse_args()
    only = set(args.only)
    if not only or only - {"ledger_tps_sqlite"}:
        bench_postgres(args.pg_url, args.seconds, only)
    if not only or "ledger_tps_sqlite" in only:
        bench_sqlite(args.seconds)


if __name__ == "__main__":
    main()
