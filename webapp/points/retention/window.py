"""The refund window (返金期間): the platform's setting and each municipality's override.

One clock for three things: how long a merchant may refund a payment, how long the ledger
keeps the link between the citizen and the merchant (then `flask points compact` removes
it), and how long a spend's idempotency record answers a retry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..models import Municipality

DEFAULT_DAYS = 90
_platform = {"days": DEFAULT_DAYS}


def configure(days: int) -> None:
    """Set the platform's window (from POINTS_REFUND_WINDOW_DAYS, at start-up)."""
    if days < 0:
        raise ValueError("the refund window is 0 days or more")
    _platform["days"] = int(days)


def platform_days() -> int:
    """The platform's window in days (a municipality without an override uses it)."""
    return _platform["days"]


def days_for(muni: Municipality) -> int:
    """The municipality's window in days: its override, else the platform's."""
    return platform_days() if muni.refund_window_days is None else muni.refund_window_days


def cutoff(muni: Municipality, now: datetime) -> datetime:
    """The instant before which the municipality's payments are past their window."""
    return now - timedelta(days=days_for(muni))
