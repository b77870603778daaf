"""The citizen's own points on the kiosk and at home (after the PIN): the statement
(balances, lots with their expiry, transactions each saying what it was, and older
months as totals per category once past the refund window), and giving to
a cause or a crowdfunding project (webapp.points.causes).

The giving steps keep what is being given in the card flow's data on the server: the
cause, the amount and the idempotency key made at `give_prepare`; `give_confirm` pays
with that key, so a second confirm (or a script repeating it) replays the receipt and
pays once. Nothing the page sends after `give_prepare` can change the amount or the cause.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ..points import causes, reports
from ..points.spend import spendable
from ..points.validation import utc_now

_JST_DATE = reports.jst_date


def my_points(s: Session, mykey_id: str) -> list[dict[str, Any]]:
    """Balances per municipality, live lots (soonest expiry first) and the latest own
    transfers, each with what it was."""
    return [
        {
            "municipality": b.municipality_name,
            "balance": b.balance,
            "spendable": b.spendable,
            "pending": b.pending,
            "lots": [
                {
                    "remaining": lot.remaining,
                    "expires_at": _JST_DATE(lot.expires_at),
                    "expired": lot.expired,
                }
                for lot in b.lots
            ],
            "transfers": [
                {
                    "kind": t.kind,
                    "status": t.status,
                    "points": t.points,
                    "balance": t.balance,
                    "counterparty": t.counterparty,
                    "detail": t.detail,
                    "date": _JST_DATE(t.created_at),
                }
                for t in reports.citizen_transfers(s, b.account_id, limit=20)
            ],
            # Past the refund window: totals per month and category, no merchant.
            "months": [
                {
                    "month": m.month,
                    "category": m.category,
                    "paid": m.paid,
                    "received": m.received,
                    "points": m.points,
                }
                for m in reports.citizen_months(s, b.account_id)
            ],
        }
        for b in reports.citizen_balances(s, mykey_id)
    ]


def _cause(c: causes.CauseView) -> dict[str, Any]:
    return {
        "id": c.id,
        "municipality_id": c.municipality_id,
        "municipality": c.municipality,
        "name": c.name,
        "description": c.description,
        "kind": c.kind,
        "goal": c.goal_points,
        "raised": c.raised,
        "ends": None if c.ends_at is None else _JST_DATE(c.ends_at, end=True),
    }


def open_causes(s: Session, mykey_id: str) -> dict[str, Any]:
    """Causes and projects open now where the citizen has points, with what they can give."""
    municipalities = causes.citizen_municipalities(s, mykey_id)
    now = utc_now()
    return {
        "causes": [_cause(c) for c in causes.open_causes(s, municipalities, now)],
        "spendable": {str(m): spendable(s, m, mykey_id, now) for m in municipalities},
    }


def give_prepare(
    s: Session, mykey_id: str, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the cause and the amount (nothing written); what to confirm, and the
    pending gift kept in the flow (with its fresh key)."""
    cause, amount = causes.check_donation(s, params.get("cause_id"), mykey_id, params.get("points"))
    balance = spendable(s, cause.municipality_id, mykey_id)
    pending = {"cause_id": cause.id, "points": amount, "key": uuid.uuid4().hex}
    body = {
        "cause": cause.name,
        "kind": cause.kind,
        "points": amount,
        "balance": balance,
        "after": balance - amount,
    }
    return body, pending


def give_confirm(
    s: Session, mykey_id: str, pending: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Give what `give_prepare` kept, with its key: a second confirm replays the receipt."""
    receipt = causes.donate(s, pending["cause_id"], mykey_id, pending["points"], key=pending["key"])
    cause = causes.get_cause(s, pending["cause_id"])
    body = {
        "receipt": {
            "number": receipt.transfer_id,
            "cause": receipt.cause,
            "kind": receipt.kind,
            "points": receipt.points,
            "balance": spendable(s, cause.municipality_id, mykey_id),
            "date": _JST_DATE(receipt.created_at),
            "replayed": receipt.replayed,
        }
    }
    return body, {**pending, "paid": receipt.transfer_id}
