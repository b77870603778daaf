"""A points history that crosses the refund window, and what must not change when
`flask points compact` rewrites it (shared by the SQLite and PostgreSQL tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.points import admin, causes, programs, reports, spend
from webapp.points.demo import City, build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import (
    Account,
    AccountKind,
    CauseKind,
    MerchantCategory,
    MissPolicy,
    Municipality,
    ProgramCategory,
    ProgramCitizenTotal,
)
from webapp.points.officer import Officer
from webapp.points.officer.causes import add_cause

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
NOW = T0 + 130 * DAY  # the clock moved past the 90-day window of the early history
RECENT = T0 + 125 * DAY  # inside the window at NOW: kept as it is
CITIZENS = ("ALICE234", "BOB23456", "CAROL789")
PERIOD = (date(2025, 4, 1), date(2025, 8, 20))


@dataclass
class History:
    """The city and what the scenario made."""

    city: City
    shop_id: int
    child_id: int
    cause_id: int
    accounts: dict[str, int]


def make_history(s: Session, directory: KnownMyKeyIds) -> History:
    """Grants, payments at two merchants, refunds and donations, a few months ago and
    recently, in a city on the platform's 90-day window."""
    city = build_city(s, now=T0)
    muni = s.get(Municipality, city.muni.id)
    assert muni is not None
    muni.refund_window_days = None  # the platform's window (90 days)
    s.commit()
    shop = admin.create_merchant(
        s, city.muni.id, "SHOP1", "商店", MerchantCategory.SHOP, now=T0
    )  # fmt: skip
    child = programs.create_program(
        s, city.muni.id, "CHILD", "子育て支援", ProgramCategory.CHILD_REARING,
        points_per_grant=300, expiry_days=365, budget=100_000, cap_grants_per_citizen=3,
        ends_at=T0 + 20 * DAY, now=T0,
    )  # fmt: skip
    cause = add_cause(
        s, Officer(city.muni.id, "officer"), code="FLOOD", name="災害復興", description="",
        kind=CauseKind.CAUSE, goal_points=None, ends_at=None, miss_policy=MissPolicy.KEEP,
        fresh_days=30, now=T0,
    )  # fmt: skip
    for who in CITIZENS:
        programs.grant(s, city.volunteering.id, who, key=f"v-{who}", directory=directory, now=T0)
    for who in ("ALICE234", "BOB23456"):
        programs.grant(s, child.id, who, key=f"c-{who}", directory=directory, now=T0 + DAY)
    programs.grant(s, child.id, "ALICE234", key="c2-ALICE", directory=directory, now=T0 + 2 * DAY)
    programs.revoke(s, _grant_id(s, "c2-ALICE"), key="rv", points=100, now=T0 + 3 * DAY)
    museum = city.museum.id
    a = spend.spend(s, museum, "ALICE234", 100, key="a1", now=T0 + 2 * DAY)
    spend.spend(s, shop.id, "ALICE234", 50, key="a2", now=T0 + 3 * DAY)
    spend.spend(s, shop.id, "ALICE234", 70, key="a3", now=T0 + 33 * DAY)  # May in JST
    spend.spend(s, museum, "BOB23456", 250, key="b1", now=T0 + 2 * DAY + 7 * 3600 * SECOND)
    spend.refund(s, museum, a.transfer_id, 40, key="ra", now=T0 + 4 * DAY)
    causes.donate(s, cause.id, "CAROL789", 60, key="d1", now=T0 + 5 * DAY)
    spend.spend(s, museum, "ALICE234", 30, key="a4", now=RECENT)
    accounts = {
        owner: acct_id
        for owner, acct_id in s.execute(
            select(Account.owner, Account.id).where(
                Account.municipality_id == city.muni.id, Account.kind == AccountKind.CITIZEN.value
            )
        )
    }
    s.commit()
    return History(city, shop.id, child.id, cause.id, accounts)


def _grant_id(s: Session, key: str) -> int:
    from webapp.points.ledger import find

    found = find(s, f"grant:{key}")
    assert found is not None
    return found.id


def _months_from_detail(s: Session, account_id: int, cut: datetime) -> dict[tuple[str, str], int]:
    """Per (JST month, category): the net of the citizen's payments before `cut`, from
    the statement's detail lines (what compaction must keep as totals)."""
    out: dict[tuple[str, str], int] = {}
    for line in reports.citizen_transfers(s, account_id, limit=200):
        if line.created_at >= cut or line.kind not in (
            "spend",
            "refund",
            "donation",
            "donation_return",
        ):
            continue
        category = "donation" if line.detail == "cause" else line.detail
        month = line.created_at.astimezone(reports.JST).strftime("%Y-%m")
        out[(month, category)] = out.get((month, category), 0) + line.points
    return out


def observe(s: Session, h: History) -> dict[str, Any]:
    """What compaction must not change: settlements, the municipality's report, balances
    and lots, and each citizen's monthly totals (from detail before, from totals after)."""
    seen: dict[str, Any] = {
        "settlement": [
            reports.settlement(s, m, *PERIOD, cutoff=NOW, now=NOW)
            for m in (h.city.museum.id, h.shop_id)
        ],
        "summary": reports.municipality_summary(s, h.city.muni.id),
        "balances": {
            who: [(b.balance, b.spendable, b.lots) for b in reports.citizen_balances(s, who, NOW)]
            for who in CITIZENS
        },
    }
    s.rollback()
    return seen


def monthly(s: Session, h: History) -> dict[str, dict[tuple[str, str], int]]:
    """Each citizen's payments per month and category past the window: from the detail
    lines, plus the compacted totals (all of it is one or the other)."""
    cut = NOW - 90 * DAY
    out = {}
    for who, acct in h.accounts.items():
        merged = _months_from_detail(s, acct, cut)
        for m in reports.citizen_months(s, acct):
            if m.category != "grant":
                merged[(m.month, m.category)] = merged.get((m.month, m.category), 0) + m.points
        out[who] = merged
    s.rollback()
    return out


def cap_counters(s: Session, program_id: int) -> int:
    """How many per-citizen cap counters the program still keeps."""
    n = len(
        s.scalars(
            select(ProgramCitizenTotal).where(ProgramCitizenTotal.program_id == program_id)
        ).all()
    )
    s.rollback()
    return n
