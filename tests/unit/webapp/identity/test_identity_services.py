"""Identity services: MyKey IDs, re-rolls, service links, aggregate-only lookups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from webapp import db
from webapp.identity import counts, services
from webapp.identity.errors import (
    AlreadyLinked,
    Code,
    NoLink,
    NotRegistered,
    NumberInvalid,
    NumberTaken,
    RerollClosed,
    RerollLimit,
    TermsNotAccepted,
    TermsOutdated,
)
from webapp.identity.models import CardBinding, LookupCount, MyKeyID, ServiceLink, Verification
from webapp.providers.numbers import Reason

NOT_AFTER = datetime(2031, 3, 31, tzinfo=UTC)
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
KEY_C = bytes(range(2, 34))


def count(s: Session, model: Any) -> int:
    return s.scalar(select(func.count()).select_from(model)) or 0


def test_create_then_open_the_same_id(s: Session) -> None:
    mykey, created = services.open_or_create(s, KEY_A, NOT_AFTER)
    assert created
    assert len(mykey.id) == 8 and set(mykey.id) <= set(services.ALPHABET)
    again, created_again = services.open_or_create(s, KEY_A.hex(), NOT_AFTER)
    assert not created_again and again.id == mykey.id
    assert count(s, MyKeyID) == 1 and count(s, CardBinding) == 1


def test_alphabet_is_unambiguous() -> None:
    assert not set("01OILUV") & set(services.ALPHABET)
    assert len(set(services.ALPHABET)) == len(services.ALPHABET)


def test_card_binding_holds_only_the_keyed_hash(s: Session) -> None:
    services.open_or_create(s, KEY_A, NOT_AFTER)
    columns = {c["name"] for c in inspect(db.engine()).get_columns("card_bindings")}
    assert columns == {"card_key", "mykey_id", "cert_not_after", "created_at"}
    assert s.scalar(select(CardBinding.card_key)) == KEY_A


@pytest.mark.parametrize("bad", [b"short", "zz" * 32, bytes(33)])
def test_bad_card_key_refused(s: Session, bad: bytes | str) -> None:
    with pytest.raises(ValueError):
        services.open_or_create(s, bad, NOT_AFTER)


def test_forced_collision_draws_again(s: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    draws = iter([first.id, first.id, "ZZZZ2222"])
    monkeypatch.setattr(services, "_draw", lambda: next(draws))
    second, created = services.open_or_create(s, KEY_B, NOT_AFTER)
    assert created and second.id == "ZZZZ2222"
    assert count(s, MyKeyID) == 2


def test_renewed_expiry_is_updated(s: Session) -> None:
    services.open_or_create(s, KEY_A, NOT_AFTER)
    later = NOT_AFTER + timedelta(days=365)
    services.open_or_create(s, KEY_A, later)
    stored = s.scalar(select(CardBinding.cert_not_after))
    assert stored is not None and stored.replace(tzinfo=UTC) == later


def test_reroll_moves_the_binding_and_stops_after_three(s: Session) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    seen = {mykey.id}
    for used in (1, 2, 3):
        mykey = services.reroll(s, mykey.id)
        assert mykey.rerolls_used == used and mykey.id not in seen
        seen.add(mykey.id)
    with pytest.raises(RerollLimit):
        services.reroll(s, mykey.id)
    assert count(s, MyKeyID) == 1
    opened, created = services.open_or_create(s, KEY_A, NOT_AFTER)
    assert not created and opened.id == mykey.id


def test_reroll_closed_after_window(s: Session) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    late = datetime.now(UTC) + services.REROLL_WINDOW + timedelta(seconds=1)
    with pytest.raises(RerollClosed):
        services.reroll(s, mykey.id, now=late)


def test_reroll_closed_after_a_link(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    services.link(s, mykey.id, make_provider(), "12345", 1)
    assert not services.can_reroll(s, mykey)
    with pytest.raises(RerollClosed) as info:
        services.reroll(s, mykey.id)
    assert info.value.code is Code.REROLL_CLOSED


def test_reroll_unknown_id(s: Session) -> None:
    with pytest.raises(NotRegistered):
        services.reroll(s, "ABCDEFGH")


def test_link_list_unlink(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    p1, p2 = make_provider(), make_provider()
    services.link(s, mykey.id, p1, "１２３４５", 1)  # full-width digits normalized
    services.link(s, mykey.id, p2, "12345", 1, Verification.STAFF)
    listed = services.links(s, mykey.id)
    assert [(row.customer_number, p.id) for row, p in listed] == [
        ("12345", p1.id),
        ("12345", p2.id),
    ]
    assert not listed[0][0].verified and listed[1][0].verification == "staff"
    assert listed[1][0].verified_at is not None
    services.unlink(s, mykey.id, p1.id)
    assert [p.id for _, p in services.links(s, mykey.id)] == [p2.id]
    with pytest.raises(NoLink):
        services.unlink(s, mykey.id, p1.id)


def test_one_link_per_provider(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    provider = make_provider()
    services.link(s, mykey.id, provider, "12345", 1)
    with pytest.raises(AlreadyLinked):
        services.link(s, mykey.id, provider, "67890", 1)
    assert count(s, ServiceLink) == 1


def test_a_verified_number_belongs_to_one_mykey_id(s: Session, make_provider: Any) -> None:
    a, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    b, _ = services.open_or_create(s, KEY_B, NOT_AFTER)
    p1, p2 = make_provider(), make_provider()
    services.link(s, a.id, p1, "12345", 1, Verification.LIBRARY)
    for verification in Verification.VERIFIED:
        with pytest.raises(NumberTaken) as info:
            services.link(s, b.id, p1, "12345", 1, verification)
        assert info.value.code == "number_taken"  # worded by webapp.catalogue
    services.link(s, b.id, p2, "12345", 1, Verification.STAFF)  # another provider: fine
    assert count(s, ServiceLink) == 2


def test_a_claim_never_tells_whether_the_number_is_someone_elses(
    s: Session, make_provider: Any
) -> None:
    """An unverified claim is accepted alike whether the number is free, claimed or held:
    `number_taken` no longer tells a stranger whether a number is linked."""
    owner, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    squatter, _ = services.open_or_create(s, KEY_B, NOT_AFTER)
    third, _ = services.open_or_create(s, KEY_C, NOT_AFTER)
    provider = make_provider()
    free = services.link(s, squatter.id, provider, "12345", 1)
    assert free.verification == Verification.UNVERIFIED and not free.verified
    services.link(s, third.id, provider, "12345", 1)  # claimed: accepted alike
    services.link(s, owner.id, make_provider(), "12345", 1, Verification.LIBRARY)
    assert count(s, ServiceLink) == 3


def test_the_owner_verifying_drops_the_squatters_claims(s: Session, make_provider: Any) -> None:
    owner, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    squatter, _ = services.open_or_create(s, KEY_B, NOT_AFTER)
    provider, other = make_provider(), make_provider()
    services.link(s, squatter.id, provider, "12345", 1)
    services.link(s, squatter.id, other, "12345", 1)  # the same digits elsewhere stay
    row = services.link(s, owner.id, provider, "12345", 1, Verification.LIBRARY)
    assert row.verification == Verification.LIBRARY
    assert [p.id for _, p in services.links(s, squatter.id)] == [other.id]
    with pytest.raises(NoLink):
        services.lookup(s, KEY_B, provider)
    assert services.lookup(s, KEY_A, provider).verified
    # A claim made after the owner verified is accepted (it says nothing) but never
    # verifies: the number is the owner's.
    services.link(s, squatter.id, provider, "12345", 1)
    with pytest.raises(NumberTaken):
        services.verify(s, squatter.id, provider.id, Verification.STAFF)
    assert services.lookup(s, KEY_A, provider).verified


def test_a_claim_is_verified_in_place(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    provider = make_provider()
    claim = services.link(s, mykey.id, provider, "12345", 1)
    with pytest.raises(NoLink):  # staff checked the card against another number
        services.verify(s, mykey.id, provider.id, Verification.STAFF, number="54321")
    verified = services.verify(s, mykey.id, provider.id, Verification.STAFF, number="12345")
    assert verified.id == claim.id and verified.verification == Verification.STAFF
    # Linking the same number verified upgrades the claim too; another number is refused.
    again = services.link(s, mykey.id, make_provider(), "77777", 1)
    assert (
        services.link(
            s, mykey.id, s.get(type(provider), again.provider_id), "77777", 1, Verification.LIBRARY
        ).id
        == again.id
    )
    with pytest.raises(AlreadyLinked):
        services.link(s, mykey.id, provider, "67890", 1, Verification.LIBRARY)
    assert count(s, ServiceLink) == 2


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("", Reason.EMPTY),
        ("12", Reason.TOO_SHORT),
        ("12a45", Reason.BAD_CHARACTERS),
        ("1234567890123", Reason.TOO_LONG),
        ("123456781", Reason.BAD_CHECK),
    ],
)
def test_bad_number_refused_with_reason_nothing_written(
    s: Session, make_provider: Any, number: str, reason: Reason
) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    provider = make_provider(
        number_rule={"min_length": 4, "max_length": 12, "check": "mod10_w21_split"}
    )
    with pytest.raises(NumberInvalid) as info:
        services.link(s, mykey.id, provider, number, 1)
    assert info.value.reason is reason and info.value.code is Code.NUMBER_INVALID
    assert count(s, ServiceLink) == 0


def test_terms_must_be_the_current_version(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    provider = make_provider(terms_version=2)
    with pytest.raises(TermsNotAccepted):
        services.link(s, mykey.id, provider, "12345", None)
    with pytest.raises(TermsOutdated):
        services.link(s, mykey.id, provider, "12345", 1)
    services.link(s, mykey.id, provider, "12345", 2)
    provider.terms_version = 3
    s.commit()
    assert services.lookup(s, KEY_A, provider).terms_outdated
    services.accept_terms(s, mykey.id, provider, 3)
    assert not services.lookup(s, KEY_A, provider).terms_outdated


def test_link_needs_a_mykey_id(s: Session, make_provider: Any) -> None:
    with pytest.raises(NotRegistered):
        services.link(s, "ABCDEFGH", make_provider(), "12345", 1)


def test_lookup_counts_per_provider_per_day_only(s: Session, make_provider: Any) -> None:
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    p1, p2 = make_provider(), make_provider()
    services.link(s, mykey.id, p1, "12345", 1)
    services.link(s, mykey.id, p2, "54321", 1)
    day = date(2026, 11, 27)
    tables_before = {t: count(s, t) for t in (MyKeyID, CardBinding, ServiceLink)}
    links_before = [(r.id, r.customer_number) for r, _ in services.links(s, mykey.id)]
    for _ in range(3):
        assert services.lookup(s, KEY_A, p1, today=day).customer_number == "12345"
    services.lookup(s, KEY_A, p2, today=day)
    services.lookup(s, KEY_A, p1, today=day + timedelta(days=1))
    counts.flush(s)  # counted in the worker, written by the flush
    rows = s.execute(select(LookupCount.provider_id, LookupCount.day, LookupCount.count)).all()
    assert sorted(rows) == sorted(
        [(p1.id, day, 3), (p2.id, day, 1), (p1.id, day + timedelta(days=1), 1)]
    )
    # Nothing per person changed: same rows, and no column refers to a MyKey ID or card.
    assert {t: count(s, t) for t in tables_before} == tables_before
    assert [(r.id, r.customer_number) for r, _ in services.links(s, mykey.id)] == links_before
    assert {c.name for c in LookupCount.__table__.columns} == {"provider_id", "day", "count"}


def test_lookup_errors(s: Session, make_provider: Any) -> None:
    provider = make_provider()
    with pytest.raises(NotRegistered):
        services.lookup(s, KEY_A, provider)
    services.open_or_create(s, KEY_A, NOT_AFTER)
    with pytest.raises(NoLink) as info:
        services.lookup(s, KEY_A, provider)
    assert info.value.code is Code.NO_LINK
    assert counts.flush(s) == 0
    assert count(s, LookupCount) == 0
