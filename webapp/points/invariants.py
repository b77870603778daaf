"""The ledger's invariants, checked from scratch (tests after every case; `flask points check`).

These are full scans: an audit, never a request path.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

# What each citizen has had from each program, from the transfers alone: grants and
# conversion bonuses, held or posted (a posting of a hold is not counted again, a voided
# hold not at all), less what was revoked; a revoke takes back points, not the payment.
_PAID = """WITH paid AS (
            SELECT t.program_id, t.credit_account_id AS account_id, SUM(t.amount) AS points,
                   COUNT(*) AS grants
            FROM points_transfers t JOIN points_accounts a ON a.id = t.credit_account_id
            WHERE t.kind IN ('grant', 'conversion_bonus') AND a.kind = 'citizen'
              AND t.pending_id IS NULL AND NOT EXISTS (
                  SELECT 1 FROM points_transfers v WHERE v.pending_id = t.id
                  AND v.status = 'voided')
            GROUP BY t.program_id, t.credit_account_id),
        revoked AS (
            SELECT program_id, debit_account_id AS account_id, SUM(amount) AS points
            FROM points_transfers WHERE kind = 'grant_revoke'
            GROUP BY program_id, debit_account_id),
        mine AS (
            SELECT paid.program_id, paid.account_id,
                   paid.points - COALESCE(revoked.points, 0) AS points, paid.grants
            FROM paid LEFT JOIN revoked ON revoked.program_id = paid.program_id
                 AND revoked.account_id = paid.account_id)"""
_PAST_CAPS = f"""{_PAID}
        SELECT p.id, m.account_id FROM mine m JOIN points_programs p ON p.id = m.program_id
        WHERE m.points > p.cap_points_per_citizen OR m.grants > p.cap_grants_per_citizen"""  # noqa: S608  (constant SQL)
_COUNTERS = f"""{_PAID}
        SELECT c.program_id, c.account_id FROM points_program_citizen_totals c
        LEFT JOIN mine m ON m.program_id = c.program_id AND m.account_id = c.account_id
        WHERE c.points <> COALESCE(m.points, 0) OR c.grants <> COALESCE(m.grants, 0)
        UNION ALL
        SELECT m.program_id, m.account_id FROM mine m
        JOIN points_programs p ON p.id = m.program_id
        WHERE (p.cap_points_per_citizen IS NOT NULL OR p.cap_grants_per_citizen IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM points_program_citizen_totals c
                          WHERE c.program_id = m.program_id AND c.account_id = m.account_id)"""  # noqa: S608  (constant SQL)

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
    "no citizen paid past a program's per-citizen caps": _PAST_CAPS,
    "cap counters equal what was paid": _COUNTERS,
    # (or from a pool, once compacted: webapp.points.retention)
    "donations go from a citizen to a cause or project": """
        SELECT t.id FROM points_transfers t
        JOIN points_accounts d ON d.id = t.debit_account_id
        LEFT JOIN points_causes c ON c.account_id = t.credit_account_id
        WHERE t.kind = 'donation' AND (c.id IS NULL OR d.kind NOT IN ('citizen', 'pool'))""",
    "donations come back only from a missed project that returns them": """
        SELECT r.id FROM points_transfers r
        LEFT JOIN points_causes c ON c.account_id = r.debit_account_id
        LEFT JOIN points_transfers o ON o.id = r.reversal_of
        WHERE r.kind = 'donation_return' AND (c.id IS NULL OR c.kind <> 'project'
              OR c.miss_policy <> 'return' OR o.kind IS NULL OR o.kind <> 'donation')""",
    "no cause or project below zero": """
        SELECT c.id FROM points_causes c JOIN points_accounts a ON a.id = c.account_id
        WHERE a.balance < 0""",
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
