"""Lookup counts (rule 2's only trace of a lookup), kept in the worker and written in
batches: a counter tap writes nothing to the database.

`add(s, provider_id, day)` adds one to this process's tally for (provider, day), under a
lock (a thread's or, with gevent's patching, a greenlet's: nothing inside it yields).
`flush()` writes each tally as one upsert per (provider, day), added to what the
database holds (`count = count + n`), so any number of workers, on any host, add up:
it does not matter which worker took a tap. It runs

- every FLUSH_SECONDS on a background thread (a greenlet under gevent), started by the
  first count in a process: a worker that never counts runs none, and a forked worker
  starts its own;
- at interpreter exit (`atexit`; gunicorn's `worker_exit` hook calls `flush` too, since
  it leaves with `os._exit`);
- whenever a caller asks (tests read the counts right after a lookup).

A crash (the process killed, the machine down) loses at most the last FLUSH_SECONDS of
counts: counts only, nothing else waits on them. A flush that fails (the database
away) keeps its tallies for the next one. Tallies are kept per engine, so two apps in
one process (tests) never write each other's counts; an engine that is gone takes its
unwritten tallies with it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import Counter
from datetime import date

from sqlalchemy import Date, Engine, bindparam, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0

# One statement per (provider, day), executed for every tally in one transaction. The
# SELECT FROM providers skips a provider deleted since its lookups (its counts go with
# it, as ON DELETE CASCADE would have taken them). Portable: PostgreSQL and SQLite 3.24+.
_UPSERT = text(
    "INSERT INTO lookup_counts (provider_id, day, count)"
    " SELECT id, :day, :n FROM providers WHERE id = :provider_id"
    " ON CONFLICT (provider_id, day) DO UPDATE SET count = lookup_counts.count + excluded.count"
).bindparams(bindparam("day", type_=Date))

_lock = threading.Lock()
_pending: weakref.WeakKeyDictionary[Engine, Counter[tuple[int, date]]] = weakref.WeakKeyDictionary()
_flusher_pid: int | None = None  # the process whose flusher runs (a fork starts its own)


def _engine_of(s: Session) -> Engine:
    bind = s.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def add(s: Session, provider_id: int, day: date, n: int = 1) -> None:
    """Count `n` lookups at `provider_id` on `day` (written by the next flush)."""
    engine = _engine_of(s)
    with _lock:
        tally = _pending.get(engine)
        if tally is None:
            tally = _pending[engine] = Counter()
        tally[(provider_id, day)] += n
    if _flusher_pid != os.getpid():
        _start_flusher()


def pending(engine: Engine | None = None) -> int:
    """Lookups counted and not written yet (for one engine, or all)."""
    with _lock:
        tallies = [_pending.get(engine)] if engine is not None else list(_pending.values())
    return sum(sum(t.values()) for t in tallies if t)


def flush(engine: Engine | Session | None = None) -> int:
    """Write the tallies (of one engine or session's engine, or of all); the number of
    lookups flushed (those of a provider deleted meanwhile go with it). A failed write
    keeps its tallies for the next flush and is logged."""
    if isinstance(engine, Session):
        engine = _engine_of(engine)
    with _lock:
        engines = [engine] if engine is not None else list(_pending.keys())
        taken = [(e, _pending.pop(e, None)) for e in engines]
    written = 0
    for e, tally in taken:
        if tally:
            written += _write(e, tally)
    return written


def _write(engine: Engine, tally: Counter[tuple[int, date]]) -> int:
    # A stable order: two workers upserting the same rows lock them in the same order.
    rows = [
        {"provider_id": provider_id, "day": day, "n": n}
        for (provider_id, day), n in sorted(tally.items())
    ]
    try:
        with engine.begin() as conn:
            conn.execute(_UPSERT, rows)
    except IntegrityError:
        # A provider deleted between the SELECT and the INSERT: write the rest one by one.
        return sum(_write_one(engine, row) for row in rows)
    except Exception:
        log.warning("lookup counts not written yet (%d kept)", sum(tally.values()), exc_info=True)
        with _lock:
            _pending.setdefault(engine, Counter()).update(tally)
        return 0
    return sum(tally.values())


def _write_one(engine: Engine, row: dict[str, object]) -> int:
    try:
        with engine.begin() as conn:
            conn.execute(_UPSERT, [row])
    except IntegrityError:
        return 0  # its provider is gone, and its counts with it
    return int(row["n"])  # type: ignore[call-overload]


def _start_flusher() -> None:
    global _flusher_pid
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_loop, name="lookup-count-flush", daemon=True).start()


def _flush_loop() -> None:
    stop = threading.Event()
    while not stop.wait(FLUSH_SECONDS):
        try:
            flush()
        except Exception:  # never let the thread die: the next round tries again
            log.exception("lookup count flush failed")


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:
        log.exception("lookup counts lost at exit")


atexit.register(_flush_at_exit)
