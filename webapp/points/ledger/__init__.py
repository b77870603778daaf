"""The ledger: the one package that writes accounts, transfers, lots and holds.

One call to `write` applies a batch of postings inside the caller's transaction:

1. holds being posted or voided are claimed (their queue row deleted), in id order;
2. citizen and merchant rows are updated (and so row-locked), in a fixed order:
   citizens by (municipality, MyKey ID), then merchants by id;
3. the transfers are inserted, holds opened, lots consumed, created or restored,
   per-citizen program caps counted (a held payment when it is held; its void gives
   the room back);
4. shared system rows (partner, program budget, expired sink, issuance) are updated
   last, in kind then id order; on PostgreSQL they travel with the COMMIT in one
   pipelined round trip (`commit`), so a hot row such as a busy program's budget is
   locked only while the server runs that UPDATE and the COMMIT;
5. reversals are checked against what they reverse.

Every transaction takes its row locks in that same total order, so two of them never
wait on each other in a cycle. `room` takes step 2's lock on one citizen early, before
`write` (which takes it again, at no cost), to read that citizen's cap counters under it:
a payment that may only take what a cap has left (a conversion's bonus) is sized there.
A payment from a program carries the program's caps (`Caps`), or `write` refuses it.

Bounded accounts (citizen, program) are updated with a condition on their available
balance (or, for the deferred shared rows, under the CHECK
constraint), so the UPDATE that takes the lock is also the check: nothing reads a
balance and writes it back, and no update is lost at READ COMMITTED or any stricter
level (stricter levels raise serialization failures instead, which `run` retries). On
SQLite `run` opens writers with BEGIN IMMEDIATE: one writer at a time, and no
reader-turned-writer deadlock.

Modules: postings (what a batch says), accounts (row updates, the pipelined commit),
entries (transfers, holds, lots, reversals), caps (per-citizen program caps), write,
unit (run, replays, reads).
"""

from __future__ import annotations

from .accounts import available, commit
from .caps import room
from .postings import Acct, Caps, DuplicateKey, Posting, Written
from .unit import as_written, check_replay, find, open_account, read, run
from .write import write

__all__ = [
    "Acct",
    "Caps",
    "DuplicateKey",
    "Posting",
    "Written",
    "as_written",
    "available",
    "check_replay",
    "commit",
    "find",
    "open_account",
    "read",
    "room",
    "run",
    "write",
]
