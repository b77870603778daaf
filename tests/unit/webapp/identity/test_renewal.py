"""Renewal: bindings move from an old card key to its successor's; nothing is orphaned,
nothing merged that holds something on both sides, and a re-roll takes the points along."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.identity import renewal, services
from webapp.identity.models import CardBinding, MyKeyID, RebindConflict
from webapp.identity.renewal import Move
from webapp.points import invariants, programs
from webapp.points.demo import build_city
from webapp.points.directory import KnownMyKeyIds
from webapp.points.models import Account, AccountKind

OLD_END = datetime(2027, 3, 31, tzinfo=UTC)
NEW_END = datetime(2032, 3, 31, tzinfo=UTC)
OLD, NEW, NEWER = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))


def count(s: Session, model: Any) -> int:
    return s.scalar(select(func.count()).select_from(model)) or 0


def bound_to(s: Session, key: bytes) -> str | None:
    binding = s.get(CardBinding, key)
    return binding.mykey_id if binding else None


def give_points(s: Session, mykey_id: str, key: str = "g1") -> None:
    city = getattr(give_points, "city", None)
    if city is None or s.get(type(city.municipality), city.municipality.id) is None:
        city = build_city(s, now=datetime.now(UTC))
        give_points.city = city  # type: ignore[attr-defined]
    programs.grant(s, city.volunteering.id, mykey_id, key=key, directory=KnownMyKeyIds({mykey_id}))


@pytest.fixture(autouse=True)
def fresh_city() -> None:
    give_points.city = None  # type: ignore[attr-defined]


def citizen_accounts(s: Session, mykey_id: str) -> list[Account]:
    stmt = select(Account).where(
        Account.owner == mykey_id, Account.kind == AccountKind.CITIZEN.value
    )
    return list(s.scalars(stmt))


def test_the_new_card_opens_the_same_id_with_its_links(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    services.link(s, mykey.id, make_provider(), "12345", 1)
    report = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert (report.moved, report.already, report.unknown, report.conflicts) == (1, 0, 0, [])
    assert bound_to(s, OLD) is None and bound_to(s, NEW) == mykey.id
    opened, created = services.open_or_create(s, NEW, NEW_END)
    assert not created and opened.id == mykey.id
    assert [link.customer_number for link, _ in services.links(s, mykey.id)] == ["12345"]
    stored = s.get(CardBinding, NEW)
    assert stored is not None and stored.cert_not_after.replace(tzinfo=UTC) == NEW_END


def test_importing_twice_changes_nothing(s: Session) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    again = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert (again.moved, again.already) == (0, 1)
    assert bound_to(s, NEW) == mykey.id and count(s, CardBinding) == 1


def test_a_card_never_bound_here_is_skipped(s: Session) -> None:
    report = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert report.unknown == 1 and count(s, CardBinding) == 0


def test_a_chain_of_renewals_ends_on_the_last_card(s: Session) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    renewal.rebind(s, [Move(OLD, NEW, OLD_END), Move(NEW, NEWER, NEW_END)])
    assert bound_to(s, NEWER) == mykey.id and count(s, CardBinding) == 1


def test_an_empty_id_made_by_an_early_tap_of_the_new_card_goes(s: Session) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    give_points(s, mykey.id)
    early, created = services.open_or_create(s, NEW, NEW_END)
    assert created and early.id != mykey.id
    report = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert report.moved == 1 and report.conflicts == []
    assert bound_to(s, NEW) == mykey.id
    assert s.get(MyKeyID, early.id) is None
    assert citizen_accounts(s, mykey.id)[0].balance == 500


def test_an_old_id_that_held_nothing_leaves_the_new_card_its_own(
    s: Session, make_provider: Any
) -> None:
    old, _ = services.open_or_create(s, OLD, OLD_END)
    new, _ = services.open_or_create(s, NEW, NEW_END)
    services.link(s, new.id, make_provider(), "12345", 1)
    report = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert report.moved == 1 and bound_to(s, NEW) == new.id
    assert s.get(MyKeyID, old.id) is None


def test_two_ids_that_both_hold_something_are_never_merged(s: Session, make_provider: Any) -> None:
    old, _ = services.open_or_create(s, OLD, OLD_END)
    new, _ = services.open_or_create(s, NEW, NEW_END)
    services.link(s, old.id, make_provider(), "11111", 1)
    give_points(s, new.id)
    report = renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert report.moved == 0 and report.conflicts == [(old.id, new.id)]
    assert bound_to(s, OLD) == old.id and bound_to(s, NEW) == new.id
    conflict = s.scalar(select(RebindConflict))
    assert conflict is not None and (conflict.old_mykey_id, conflict.new_mykey_id) == (
        old.id,
        new.id,
    )
    renewal.rebind(s, [Move(OLD, NEW, NEW_END)])
    assert count(s, RebindConflict) == 1  # reported once


def test_one_file_is_all_or_nothing(s: Session) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    other, _ = services.open_or_create(s, NEWER, OLD_END)

    def moves() -> Any:
        yield Move(OLD, NEW, NEW_END)
        raise OSError("the file ended half-way")

    with pytest.raises(OSError):
        renewal.rebind(s, moves())
    assert bound_to(s, OLD) == mykey.id and bound_to(s, NEW) is None
    assert bound_to(s, NEWER) == other.id
    with pytest.raises(ValueError):
        Move(OLD, b"short", NEW_END)


def test_a_reroll_takes_the_points_along(s: Session) -> None:
    mykey, _ = services.open_or_create(s, OLD, OLD_END)
    give_points(s, mykey.id)
    rolled = services.reroll(s, mykey.id)
    assert citizen_accounts(s, mykey.id) == []
    assert citizen_accounts(s, rolled.id)[0].balance == 500
    assert invariants.violations(s) == {}
    owners = set(s.scalars(select(Account.owner).where(Account.kind == "citizen")))
    assert owners <= set(s.scalars(select(MyKeyID.id)))  # nothing orphaned
