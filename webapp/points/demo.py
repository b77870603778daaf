"""A ready-made city for the demo, the tests and the benchmark: programs, a partner, shops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from . import admin, partners, programs
from .models import (
    Merchant,
    MerchantCategory,
    Municipality,
    Partner,
    PartnerKind,
    Program,
    ProgramCategory,
)
from .validation import utc_now


@dataclass
class City:
    """One municipality with a grant program, a bonus budget, a partner and a museum."""

    muni: Municipality
    volunteering: Program
    bonus: Program
    partner: Partner
    api_key: str
    museum: Merchant


def build_city(
    session: Session,
    code: str = "011002",
    *,
    budget: int = 100_000,
    partner_code: str = "AIRLINE1",
    name: str | None = None,
    now: datetime | None = None,
) -> City:
    """City `code` (named `name`, else テスト市<code>): volunteering 500 pts/180 days,
    bonus 10 %, rate 1:1, unit 100, hold 14 days, and a museum that takes points."""
    now = utc_now(now)
    muni = admin.create_municipality(
        session,
        code,
        name or f"テスト市{code}",
        categories=[MerchantCategory.MUSEUM, MerchantCategory.SHOP],
        refund_window_days=30,
        now=now,
    )
    volunteering = programs.create_program(
        session,
        muni.id,
        "VOL",
        "ボランティア",
        ProgramCategory.VOLUNTEERING,
        points_per_grant=500,
        expiry_days=180,
        budget=budget,
        now=now,
    )
    bonus = programs.create_program(
        session,
        muni.id,
        "BONUS",
        "地域経済応援ポイント上乗せ",
        ProgramCategory.PARTNER_BONUS,
        points_per_grant=1,
        expiry_days=365,
        budget=budget,
        now=now,
    )
    partner = admin.create_partner(
        session, partner_code, "テスト航空", PartnerKind.AIRLINE, municipality_id=muni.id, now=now
    )
    admin.set_terms(
        session,
        muni.id,
        partner.id,
        rate=(1, 1),
        bonus_bp=1000,
        min_unit=100,
        hold_days=14,
        expiry_days=365,
        bonus_program_id=bonus.id,
        now=now,
    )
    key = partners.issue_key(session, partner.id, now=now)
    museum = admin.create_merchant(
        session, muni.id, "MUSEUM1", "市立美術館", MerchantCategory.MUSEUM, now=now
    )
    return City(muni, volunteering, bonus, partner, key, museum)
