"""Worker processes killed with kill -9 in the middle of transactions, then run again with
the same requests: nothing is lost, nothing is doubled, the books still balance."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from points_pg import REPO, schema_url
from points_workload import keyed, plan, setup, transfers_by_key
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

WORKER = Path(__file__).with_name("points_worker.py")
WORKERS = 4
OPS = 200
SEED = 7000


def start(url: str, n: int, log: Path) -> subprocess.Popen[bytes]:
    """Start worker `n` on its plan, appending to `log` (its stderr goes to log.err)."""
    app_url = f"{url}&application_name=points-worker-{n}"
    with open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(
            [sys.executable, str(WORKER), app_url, str(SEED + n), str(OPS), f"k{n}", str(log)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def lines(log: Path) -> list[list[object]]:
    """The outcomes a worker logged (a line cut by the kill is ignored)."""
    if not log.exists():
        return []
    out = []
    for raw in log.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            break
    return out


def in_transaction(admin: Engine, n: int) -> bool:
    """Whether worker n's backend is inside a transaction right now."""
    with admin.connect() as connection:
        state = connection.execute(
            text("SELECT state FROM pg_stat_activity WHERE application_name = :a"),
            {"a": f"points-worker-{n}"},
        ).scalar()
    return state in ("idle in transaction", "active")


def kill_mid_transaction(
    admin: Engine, proc: subprocess.Popen[bytes], n: int, log: Path, target: int
) -> bool:
    """Once worker n has logged `target` outcomes, catch it inside a transaction and kill -9
    it; True when the kill landed inside a transaction."""
    deadline = time.monotonic() + 60
    while len(lines(log)) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    caught = False
    while proc.poll() is None and time.monotonic() < deadline and not caught:
        caught = in_transaction(admin, n)
    if proc.poll() is not None:  # finished first: nothing to kill
        assert proc.returncode == 0, log.with_suffix(".err").read_text()[-3000:]
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return caught


def test_killed_workers_retried_lose_and_double_nothing(
    pg_admin: Engine, pg_engine: Engine, pg_schema: str, tmp_path: Path
) -> None:
    with Session(pg_engine) as s:
        ids = setup(s)
    url = schema_url(pg_schema)
    rng = random.Random(SEED)
    logs = [tmp_path / f"round{r}-worker{n}.log" for r in range(3) for n in range(WORKERS)]
    caught = 0
    for r in range(2):  # two rounds of kills, each worker started again from its first op
        procs = [start(url, n, logs[r * WORKERS + n]) for n in range(WORKERS)]
        for n, proc in enumerate(procs):
            caught += kill_mid_transaction(
                pg_admin, proc, n, logs[r * WORKERS + n], rng.randint(5, 40)
            )
    procs = [start(url, n, logs[2 * WORKERS + n]) for n in range(WORKERS)]
    for n, proc in enumerate(procs):
        proc.wait(timeout=150)
        assert proc.returncode == 0, logs[2 * WORKERS + n].with_suffix(".err").read_text()[-3000:]
    assert caught >= WORKERS  # most kills landed inside a transaction

    plans = [plan(SEED + n, OPS, f"k{n}") for n in range(WORKERS)]
    expected: dict[str, bool] = {}
    for n, ops in enumerate(plans):
        final = {i: (status, value) for i, status, value in lines(logs[2 * WORKERS + n])}
        assert len(final) == OPS
        for r in range(2):
            for i, status, value in lines(logs[r * WORKERS + n]):
                kind = ops[i].kind if ops[i].kind != "replay" else "replay"
                if status == "ok" and value is not None and kind not in ("cancel", "replay"):
                    assert final[i] == (status, value), (n, i, ops[i])  # not lost, same result
        for key, op_key in keyed(ops, ids).items():
            i = int(op_key.rsplit("-", 1)[1])
            replays = [j for j, o in enumerate(ops) if o.kind == "replay" and _origin(ops, j) == i]
            expected[key] = any(
                final[j][0] == "ok" and final[j][1] is not None for j in [i, *replays]
            )
    counts = transfers_by_key(Session(pg_engine), list(expected))
    assert {k for k, v in expected.items() if v} == set(counts)
    assert set(counts.values()) == {1}  # never doubled


def _origin(ops: list, j: int) -> int:  # type: ignore[type-arg]
    while ops[j].kind == "replay":
        j = ops[j].ref
    return j
