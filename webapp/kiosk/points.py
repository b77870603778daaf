"""The citizen's own points on the kiosk (after the PIN): balances, lots, transfers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..points import reports


def my_points(s: Session, mykey_id: str) -> list[dict[str, Any]]:
    """Balances per municipality, live lots with expiry, and the latest own transfers."""
    return [
        {
            "municipality": b.municipality_name,
            "balance": b.balance,
            "spendable": b.spendable,
            "pending": b.pending,
            "lots": [
                {
                    "remaining": lot.remaining,
                    "expires_at": lot.expires_at.date().isoformat(),
                    "expired": lot.expired,
                }
                for lot in b.lots
            ],
            "transfers": [
                {
                    "kind": t.kind,
                    "points": t.points,
                    "balance": t.balance,
                    "counterparty": t.counterparty,
                    "date": t.created_at.date().isoformat(),
                }
                for t in reports.citizen_transfers(s, b.account_id, limit=20)
            ],
        }
        for b in reports.citizen_balances(s, mykey_id)
    ]
