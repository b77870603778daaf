"""The officer's services beyond the pages: a code taken between the check and the
commit, and the audit entries' diff."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from webapp import db
from webapp.points import admin, audit
from webapp.points.demo import City
from webapp.points.errors import Code, InvalidInput
from webapp.points.models import AuditEntry, Merchant, MerchantCategory, PartnerKind
from webapp.points.officer import Officer
from webapp.points.officer import merchants as merchant_services
from webapp.points.officer import partners as partner_services


def _taken_meanwhile(s: Session, make: Any) -> None:
    """Before our first flush, another request commits the same code."""

    def other(*_: object) -> None:
        with db.new_session() as elsewhere:
            make(elsewhere)

    event.listen(s, "before_flush", other, once=True)


def test_a_merchant_code_taken_meanwhile_is_a_clear_refusal(s: Session, world: City) -> None:
    who = Officer(world.muni.id, "officer")
    _taken_meanwhile(
        s,
        lambda other: admin.create_merchant(
            other, world.muni.id, "CAFE", "先に登録", MerchantCategory.SHOP
        ),
    )
    with pytest.raises(InvalidInput) as refused:
        merchant_services.add_merchant(
            s, who, code="cafe", name="あとから", category=MerchantCategory.SHOP
        )
    assert refused.value.code is Code.DUPLICATE_CODE
    names = s.scalars(select(Merchant.name).where(Merchant.code == "CAFE")).all()
    assert names == ["先に登録"]
    assert s.scalars(select(AuditEntry)).all() == []  # the refused change left no entry


def test_a_partner_code_taken_meanwhile_is_a_clear_refusal(s: Session, world: City) -> None:
    who = Officer(world.muni.id, "officer")
    _taken_meanwhile(
        s, lambda other: admin.create_partner(other, "SKY", "先の航空", PartnerKind.AIRLINE)
    )
    with pytest.raises(InvalidInput) as refused:
        partner_services.add_partner(s, who, code="SKY", name="後の航空", kind=PartnerKind.AIRLINE)
    assert refused.value.code is Code.DUPLICATE_CODE
    assert s.scalars(select(AuditEntry)).all() == []


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"b": ["x", "y"]}),
        ({}, {"a": None, "b": 2}, {"b": [None, 2]}),
        ({"a": True}, {"a": False, "c": 3}, {"a": [True, False], "c": [None, 3]}),
        ({"a": 1}, {"a": 1}, {}),
    ],
)
def test_the_diff_keeps_changed_fields_only(
    before: dict[str, Any], after: dict[str, Any], changes: dict[str, Any]
) -> None:
    assert audit.diff(before, after) == changes
