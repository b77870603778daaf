"""The ledger: the one package that writes accounts, transfers, lots and holds.

One call to `write` applies a batch of postings inside the caller's transaction:

1. holds being posted or voided are claimed (their queue row deleted), in id order;
2. citizen and merchant rows are updated (and so row-locked), in a fixed order:
   citizens by (municipality, MyKey ID), then merchants by id;
3. the transfers are inserted, holds opened, lots consumed, created or restored,
   per-citizen program caps counted;
4. shared system rows (partner, program budget, expired sink, issuance) are updated
   last, in kind then id order; on PostgreSQL they travel with the COMMIT in one
   pipelined round trip (`commit`), so a hot row such as a busy program's budget is
   locked only while the server runs that UPDATE and the COMMIT;
5. reversals are checked against what they reverse.

Every transaction takes its row locks in that same total order, so two of them never
wait on each other in a cycle. Bounded accounts (citizen, program) are updated with a
condition on their available balance (or, for the deferred shared rows, under the CHECK
constraint), so the UPDATE that takes the lock is also the check: nothing reads a
balance and writes it back, and no update is lost at READ COMMITTED or any stricter
level (stricter levels raise serialization failures instead, which `run` retries). On
SQLite `run` opens writers with BEGIN IMMEDIATE: one writer at a time, and no
reader-turned-writer deadlock.

Modules: postings (what a batch says), accounts (row updates, the pipelined commit),
entries (transfers, holds, lots, caps, reversals), write, unit (run, replays, reads).
"""

from __future__ import annotations

from .accounts import commit
from .postings import Acct, DuplicateKey, Posting, Written
from .unit import as_written, check_replay, find, open_account, read, run
from .write import write

__all__ = [
    "Acct",
    "DuplicateKey",
    "Posting",
    "Written",
    "as_written",
    "check_replay",
    "commit",
    "find",
    "open_account",
    "read",
    "run",
    "write",
]
