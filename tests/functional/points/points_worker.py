"""A worker process of the kill -9 test: plays one seeded plan, logging each outcome.

    python points_worker.py URL SEED COUNT PREFIX LOG

Each commit waits a few milliseconds first (SQLAlchemy's "commit" event fires before
COMMIT is sent), so a kill -9 often lands while a transaction holds its row locks.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root

from points_workload import lookup, plan, run
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from webapp.db import make_engine


def main(url: str, seed: int, count: int, prefix: str, log_path: str) -> None:
    """Play plan(seed, count, prefix) from the start, appending `[index, status, value]` lines."""
    engine = make_engine(url)
    jitter = random.Random(seed ^ 0x5EED)

    @event.listens_for(engine, "commit")
    def linger(_conn: object) -> None:
        time.sleep(jitter.uniform(0.002, 0.010))

    sessions = sessionmaker(engine, expire_on_commit=False)
    ops = plan(seed, count, prefix)
    with open(log_path, "a", encoding="utf-8") as log, sessions() as s:
        ids = lookup(s)
        for i in range(count):
            status, value = run(s, ids, ops, i)
            log.write(json.dumps([i, status, value]) + "\n")
            log.flush()
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    sys.exit(0)
