"""Partner conversion: rate, bonus, floor rounding, unit, hold, post, void, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.points import admin, conversion, programs, reports, spend
from webapp.points.demo import City
from webapp.points.directory import KnownMyKeyIds
from webapp.points.errors import Code, Conflict, Forbidden, NotFound, Refused
from webapp.points.models import Account, PartnerKind, PointLot, ProgramCategory

T0 = datetime(2025, 4, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rate", "bonus_bp", "unit", "points", "expected"),
    [
        ((1, 1), 1000, 100, 1000, (1000, 100)),
        ((3, 10), 2500, 10, 1010, (303, 75)),  # 75.75 -> 75
        ((1, 2), 1500, 1, 3, (1, 0)),  # 1.5 -> 1, bonus 0.15 -> 0
        ((2, 1), 0, 500, 500, (1000, 0)),
    ],
)
def test_quote_rounds_down(
    rate: tuple[int, int], bonus_bp: int, unit: int, points: int, expected: tuple[int, int]
) -> None:
    terms = SimpleNamespace(rate_num=rate[0], rate_den=rate[1], bonus_bp=bonus_bp, min_unit=unit)
    assert conversion.quote(terms, points) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("points", [0, 50, 150, -100])
def test_quote_refuses_off_unit(points: int) -> None:
    terms = SimpleNamespace(rate_num=1, rate_den=1, bonus_bp=0, min_unit=100)
    with pytest.raises(Refused) as exc:
        conversion.quote(terms, points)  # type: ignore[arg-type]
    assert exc.value.code is Code.BELOW_MINIMUM_UNIT


def convert(
    s: Session, w: City, d: KnownMyKeyIds, ref: str, points: int = 1000, **kw: object
) -> conversion.ConversionResult:
    """Convert for ALICE234 in the test city at T0 unless told otherwise."""
    args: dict[str, object] = {"municipality_code": "011002", "citizen": "ALICE234", "now": T0}
    args.update(kw)
    return conversion.convert(s, w.partner, partner_points=points, ref=ref, directory=d, **args)  # type: ignore[arg-type]


def test_conversion_is_held_then_posted(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    held = convert(s, world, directory, "REF-1")
    assert (held.base_points, held.bonus_points, held.status) == (1000, 100, "pending")
    assert held.hold_until == T0 + timedelta(days=14)
    [mine] = reports.citizen_balances(s, "ALICE234", T0)
    assert (mine.balance, mine.pending) == (0, 1100)
    with pytest.raises(Refused):
        spend.spend(s, world.museum.id, "ALICE234", 1, key="t", now=T0 + timedelta(days=1))
    assert conversion.post_due(s, now=T0 + timedelta(days=13)) == 0
    posted_at = T0 + timedelta(days=14)
    assert conversion.post_due(s, now=posted_at) == 1
    assert conversion.status(s, world.partner, "REF-1").status == "posted"
    [mine] = reports.citizen_balances(s, "ALICE234", posted_at)
    assert (mine.balance, mine.pending) == (1100, 0)
    expiries = sorted(lot.expires_at for lot in s.scalars(select(PointLot)))
    assert expiries == [posted_at + timedelta(days=365)] * 2
    partner_account = s.get(Account, admin_terms_account(s, world))
    assert partner_account is not None and partner_account.balance == -1000
    assert conversion.post_due(s, now=posted_at) == 0


def admin_terms_account(s: Session, w: City) -> int:
    """The partner's account id in the test city."""
    from webapp.points.models import ConversionTerms

    terms = s.scalar(select(ConversionTerms).where(ConversionTerms.partner_id == w.partner.id))
    assert terms is not None
    return terms.partner_account_id


def test_replay_on_partner_reference(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    first = convert(s, world, directory, "REF-1")
    again = convert(s, world, directory, "REF-1", now=T0 + timedelta(hours=1))
    assert again.replayed and again.created_at == first.created_at
    with pytest.raises(Conflict) as exc:
        convert(s, world, directory, "REF-1", points=2000)
    assert exc.value.code is Code.IDEMPOTENCY_CONFLICT
    [mine] = reports.citizen_balances(s, "ALICE234", T0)
    assert mine.pending == 1100


def test_cancel_voids_while_held_only(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    convert(s, world, directory, "REF-1")
    convert(s, world, directory, "REF-2")
    voided = conversion.cancel(s, world.partner, "REF-1", now=T0 + timedelta(days=1))
    assert voided.status == "voided"
    assert conversion.cancel(s, world.partner, "REF-1", now=T0 + timedelta(days=2)).replayed
    assert conversion.post_due(s, now=T0 + timedelta(days=15)) == 1
    with pytest.raises(Conflict) as exc:
        conversion.cancel(s, world.partner, "REF-2", now=T0 + timedelta(days=16))
    assert exc.value.code is Code.ALREADY_RESOLVED
    [mine] = reports.citizen_balances(s, "ALICE234", T0)
    assert (mine.balance, mine.pending) == (1100, 0)
    with pytest.raises(NotFound):
        conversion.cancel(s, world.partner, "REF-9", now=T0)


def test_bonus_budget_is_not_overspent(s: Session, world: City, directory: KnownMyKeyIds) -> None:
    convert(s, world, directory, "BIG", points=990_000)  # bonus 99,000 of the 100,000 budget
    more = convert(s, world, directory, "MORE", points=20_000)  # bonus 2,000 > 1,000 left
    # The conversion goes through; its bonus is what the budget had left.
    assert (more.base_points, more.bonus_asked, more.bonus_points) == (20_000, 2_000, 1_000)
    last = convert(s, world, directory, "LAST", points=1_000)
    assert (last.base_points, last.bonus_asked, last.bonus_points) == (1_000, 100, 0)
    summary = reports.municipality_summary(s, world.muni.id)
    assert ("BONUS", 100_000, 100_000, 0) in summary.programs
    assert summary.conversions == [("AIRLINE1", 3, 1_011_000, 1_011_000, 100_000)]
    assert summary.pending == 1_011_000 + 100_000


def test_no_hold_posts_at_once_and_unknowns_are_refused(
    s: Session, world: City, directory: KnownMyKeyIds
) -> None:
    mobile = admin.create_partner(s, "MOBILE1", "テスト携帯", PartnerKind.MOBILE, now=T0)
    admin.set_terms(s, world.muni.id, mobile.id, rate=(1, 2), min_unit=2, hold_days=0)
    result = conversion.convert(
        s, mobile, municipality_code="011002", citizen="BOB23456", partner_points=10,
        ref="M1", directory=directory, now=T0,
    )  # fmt: skip
    assert (result.status, result.points) == ("posted", 5)
    assert spend.spend(s, world.museum.id, "BOB23456", 5, key="t", now=T0).balance == 0
    with pytest.raises(Conflict):
        conversion.cancel(s, mobile, "M1", now=T0)
    with pytest.raises(NotFound) as nf:
        convert(s, world, directory, "X1", municipality_code="999999")
    assert nf.value.code is Code.UNKNOWN_MUNICIPALITY
    with pytest.raises(NotFound) as nf:
        convert(s, world, directory, "X2", citizen="NOBODY11")
    assert nf.value.code is Code.UNKNOWN_CITIZEN
    other = admin.create_municipality(s, "131016", "千代田区", now=T0)
    programs.create_program(
        s, other.id, "VOL", "ボランティア", ProgramCategory.VOLUNTEERING,
        points_per_grant=1, expiry_days=1, budget=1, now=T0,
    )  # fmt: skip
    with pytest.raises(Forbidden):
        convert(s, world, directory, "X3", municipality_code="131016")
