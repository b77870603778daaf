"""Terminals domain: a shop till names an existing merchant; no other kind names one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import db
from webapp.points import admin as points_admin
from webapp.points.demo import build_city
from webapp.points.models import Merchant, MerchantCategory
from webapp.providers.models import Provider
from webapp.terminals import services
from webapp.terminals.errors import InvalidRequest, UnknownTerminal
from webapp.terminals.models import Terminal, TerminalKind
from webapp.terminals.testing import build_app


@dataclass(frozen=True)
class Ids:
    provider: int
    museum: int
    shop: int


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = build_app(f"sqlite:///{tmp_path / 't.db'}")
    yield app
    app.extensions["bus"].close()


@pytest.fixture
def s(app: Any) -> Iterator[Session]:
    with app.app_context(), db.new_session() as session:
        yield session


@pytest.fixture
def ids(s: Session) -> Ids:
    provider = Provider(code="museum-1", kind="museum", name_ja="美術館")
    s.add(provider)
    s.commit()
    city = build_city(s)
    shop = points_admin.create_merchant(s, city.muni.id, "SHOP1", "商店", MerchantCategory.SHOP)
    return Ids(provider.id, city.museum.id, shop.id)


def count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(Terminal)) or 0)


def test_a_till_is_created_with_its_merchant(s: Session, ids: Ids) -> None:
    till = services.create_terminal(
        s, ids.provider, TerminalKind.MERCHANT, "Till", merchant_id=ids.museum
    )
    s.expire_all()
    assert s.get(Terminal, till.id).merchant_id == ids.museum  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "merchant", "code"),
    [
        (TerminalKind.MERCHANT, None, "merchant_required"),
        (TerminalKind.MERCHANT, 999_999, "unknown_merchant"),
        (TerminalKind.MERCHANT, "1", "unknown_merchant"),  # not an int: no coercion
        (TerminalKind.MERCHANT, True, "unknown_merchant"),
        (TerminalKind.COUNTER, "museum", "merchant_not_allowed"),
        (TerminalKind.KIOSK, "museum", "merchant_not_allowed"),
        (TerminalKind.COUNTER, 999_999, "merchant_not_allowed"),
    ],
)
def test_create_refuses_a_wrong_merchant(
    s: Session, ids: Ids, kind: str, merchant: object, code: str
) -> None:
    merchant_id = ids.museum if merchant == "museum" else merchant
    with pytest.raises(InvalidRequest) as refused:
        services.create_terminal(s, ids.provider, kind, "T", merchant_id=merchant_id)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert refused.value.status == 400
    s.rollback()
    assert count(s) == 0


@pytest.mark.parametrize("kind", [TerminalKind.COUNTER, TerminalKind.KIOSK])
def test_other_kinds_need_no_merchant(s: Session, ids: Ids, kind: str) -> None:
    assert services.create_terminal(s, ids.provider, kind, "T").merchant_id is None


def test_set_merchant_moves_a_till(s: Session, ids: Ids) -> None:
    till = services.create_terminal(
        s, ids.provider, TerminalKind.MERCHANT, "Till", merchant_id=ids.museum
    )
    services.set_merchant(s, till.id, ids.shop)
    s.expire_all()
    assert s.get(Terminal, till.id).merchant_id == ids.shop  # type: ignore[union-attr]


def test_set_merchant_refuses_and_keeps_the_old_binding(s: Session, ids: Ids) -> None:
    till = services.create_terminal(
        s, ids.provider, TerminalKind.MERCHANT, "Till", merchant_id=ids.museum
    )
    desk = services.create_terminal(s, ids.provider, TerminalKind.COUNTER, "Desk")
    with pytest.raises(InvalidRequest) as unknown:
        services.set_merchant(s, till.id, 999_999)
    assert unknown.value.code == "unknown_merchant"
    with pytest.raises(InvalidRequest) as counter:
        services.set_merchant(s, desk.id, ids.shop)
    assert counter.value.code == "merchant_not_allowed"
    with pytest.raises(UnknownTerminal):
        services.set_merchant(s, 999_999, ids.shop)
    s.rollback()
    s.expire_all()
    assert s.get(Terminal, till.id).merchant_id == ids.museum  # type: ignore[union-attr]
    assert s.get(Terminal, desk.id).merchant_id is None  # type: ignore[union-attr]


def test_the_database_refuses_a_merchant_that_does_not_exist(s: Session, ids: Ids) -> None:
    """A real foreign key backs the service's check (SQLite with foreign_keys=ON)."""
    s.add(Terminal(provider_id=ids.provider, kind="merchant", name="T", merchant_id=999_999))
    with pytest.raises(IntegrityError):
        s.commit()
    s.rollback()


def test_the_admin_sees_merchants_with_their_municipality(s: Session, ids: Ids) -> None:
    choices = services.merchant_choices(s)
    assert [(c.id, c.code) for c in choices] == [(ids.museum, "MUSEUM1"), (ids.shop, "SHOP1")]
    assert choices[0].municipality == "テスト市011002 (011002)"
    till = services.create_terminal(
        s, ids.provider, TerminalKind.MERCHANT, "Till", merchant_id=ids.shop
    )
    desk = services.create_terminal(s, ids.provider, TerminalKind.COUNTER, "Desk")
    named = services.merchants_of(s, [till, desk])
    assert list(named) == [ids.shop] and named[ids.shop].name == "商店"
    assert services.merchants_of(s, [desk]) == {}
    assert len(services.merchant_choices(s, limit=1)) == 1
    assert s.get(Merchant, ids.shop) is not None
