"""The ledger's invariants, checked from scratch (tests after every case; `flask points check`).

These are full scans: an audit, never a request path.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# Each query returns offending rows; an empty result means the invariant holds.
CHECKS: dict[str, str] = {
    "balances sum to zero": "SELECT SUM(balance) FROM points_accounts HAVING SUM(balance) <> 0",
    "balances sum to zero in each municipality": (
        "SELECT municipality_id, SUM(balance) FROM points_accounts"
        " GROUP BY municipality_id HAVING SUM(balance) <> 0"
    ),
    "each balance equals its posted transfers": """
        SELECT a.id, a.balance, COALESCE(c.s, 0) - COALESCE(d.s, 0)
        FROM points_accounts a
        LEFT JOIN (SELECT credit_account_id AS id, SUM(amount) AS s FROM points_transfers
                   WHERE status = 'posted' GROUP BY credit_account_id) c ON c.id = a.id
        LEFT JOIN (SELECT debit_account_id AS id, SUM(amount) AS s FROM points_transfers
                   WHERE status = 'posted' GROUP BY debit_account_id) d ON d.id = a.id
        WHERE a.balance <> COALESCE(c.s, 0) - COALESCE(d.s, 0)""",
    "pending amounts equal open holds": """
        SELECT a.id FROM points_accounts a
        LEFT JOIN (SELECT t.debit_account_id AS id, SUM(t.amount) AS s
                   FROM points_transfers t JOIN points_open_holds h ON h.transfer_id = t.id
                   GROUP BY t.debit_account_id) d ON d.id = a.id
        LEFT JOIN (SELECT t.credit_account_id AS id, SUM(t.amount) AS s
                   FROM points_transfers t JOIN points_open_holds h ON h.transfer_id = t.id
                   GROUP BY t.credit_account_id) c ON c.id = a.id
        WHERE a.debits_pending <> COALESCE(d.s, 0) OR a.credits_pending <> COALESCE(c.s, 0)""",
    "every pending transfer is open or resolved once": """
        SELECT t.id FROM points_transfers t
        LEFT JOIN points_open_holds h ON h.transfer_id = t.id
        LEFT JOIN points_transfers r ON r.pending_id = t.id
        WHERE t.status = 'pending' AND (h.transfer_id IS NULL) = (r.id IS NULL)""",
    "no citizen or budget below zero": (
        "SELECT id FROM points_accounts WHERE kind IN ('citizen', 'program')"
        " AND balance - debits_pending < 0"
    ),
    "citizen balance equals its lots": """
        SELECT a.id FROM points_accounts a
        LEFT JOIN (SELECT account_id, SUM(remaining) AS s FROM points_lots
                   GROUP BY account_id) l ON l.account_id = a.id
        WHERE a.kind = 'citizen' AND a.balance <> COALESCE(l.s, 0)""",
    "lot remaining equals amount plus moves": """
        SELECT l.id FROM points_lots l
        LEFT JOIN (SELECT lot_id, SUM(delta) AS s FROM points_lot_moves GROUP BY lot_id) m
               ON m.lot_id = l.id
        WHERE l.remaining <> l.amount + COALESCE(m.s, 0)""",
    "reversals never exceed the original": """
        SELECT o.id FROM points_transfers o
        JOIN points_transfers r ON r.reversal_of = o.id
        GROUP BY o.id, o.amount HAVING SUM(r.amount) > o.amount""",
    "transfers stay in one municipality": """
        SELECT t.id FROM points_transfers t
        JOIN points_accounts d ON d.id = t.debit_account_id
        JOIN points_accounts c ON c.id = t.credit_account_id
        WHERE d.municipality_id <> t.municipality_id OR c.municipality_id <> t.municipality_id""",
}


def violations(session: Session) -> dict[str, list[tuple[object, ...]]]:
    """Every invariant that does not hold, with (up to 10 of) its offending rows."""
    found: dict[str, list[tuple[object, ...]]] = {}
    for name, sql in CHECKS.items():
        rows = [tuple(r) for r in session.execute(text(sql)).fetchmany(10)]
        if rows:
            found[name] = rows
    return found
