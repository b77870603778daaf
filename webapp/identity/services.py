"""Identity services: open or create a MyKey ID, re-roll it, link and look up service IDs.

Plain Python over a SQLAlchemy session (no Flask). Each mutating call commits its own unit
of work; a typed error (errors.py) means nothing was written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..providers.models import Provider
from ..providers.numbers import NumberFormatError, validate
from .errors import (
    AlreadyLinked,
    NoLink,
    NotRegistered,
    NumberInvalid,
    NumberTaken,
    RerollClosed,
    RerollLimit,
    TermsNotAccepted,
    TermsOutdated,
)
from .models import CARD_KEY_LENGTH, MYKEY_ID_LENGTH, CardBinding, LookupCount, MyKeyID, ServiceLink

# No 0/O, 1/I/L, U/V (Crockford's reasoning): easy to read aloud and to type at a kiosk.
# 29 symbols ** 8 = 5.0e11 IDs: at 1e8 citizens a fresh draw collides 2e-4 of the time.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
MAX_REROLLS = 3
REROLL_WINDOW = timedelta(minutes=30)
_MAX_DRAWS = 16
JST = timezone(timedelta(hours=9), "JST")  # no daylight saving: a fixed offset is exact


def random_id() -> str:
    """A fresh MyKey ID candidate from the unambiguous alphabet (secrets, not random)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(MYKEY_ID_LENGTH))


# Tests swap this to force collisions.
_draw: Callable[[], str] = random_id


def card_key_bytes(card_key: bytes | str) -> bytes:
    """The 32-byte keyed hash of a card, from bytes or hex; ValueError otherwise."""
    key = bytes.fromhex(card_key) if isinstance(card_key, str) else bytes(card_key)
    if len(key) != CARD_KEY_LENGTH:
        raise ValueError(f"a card key is {CARD_KEY_LENGTH} bytes")
    return key


def _aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _unused_id(s: Session) -> str:
    """An ID no MyKeyID row holds yet (a point read per draw)."""
    for _ in range(_MAX_DRAWS):
        candidate = _draw()
        if s.get(MyKeyID, candidate) is None:
            return candidate
    raise RuntimeError("could not draw an unused MyKey ID")  # ~never at 5e11 IDs


def open_or_create(
    s: Session, card_key: bytes | str, not_after: datetime, *, now: datetime | None = None
) -> tuple[MyKeyID, bool]:
    """The MyKey ID bound to this card, or a new one; `created` tells which."""
    key = card_key_bytes(card_key)
    for _ in range(3):
        binding = s.get(CardBinding, key)
        if binding is not None:
            if _aware(binding.cert_not_after) != _aware(not_after):
                binding.cert_not_after = not_after
                s.commit()
            mykey = s.get(MyKeyID, binding.mykey_id)
            assert mykey is not None  # noqa: S101  (FK guarantees it)
            return mykey, False
        at = _now(now)
        mykey = MyKeyID(id=_unused_id(s), created_at=at, rerolls_used=0)
        s.add(mykey)
        s.flush()
        s.add(CardBinding(card_key=key, mykey_id=mykey.id, cert_not_after=not_after, created_at=at))
        try:
            s.commit()
            return mykey, True
        except IntegrityError:
            # Another worker bound the same card, or drew the same ID, meanwhile: look again.
            s.rollback()
    raise RuntimeError("could not open or create a MyKey ID")


def get(s: Session, mykey_id: str) -> MyKeyID:
    """The MyKey ID, or NotRegistered."""
    mykey = s.get(MyKeyID, mykey_id)
    if mykey is None:
        raise NotRegistered()
    return mykey


def _has_links(s: Session, mykey_id: str) -> bool:
    stmt = select(ServiceLink.id).where(ServiceLink.mykey_id == mykey_id).limit(1)
    return s.scalar(stmt) is not None


def can_reroll(s: Session, mykey: MyKeyID, *, now: datetime | None = None) -> bool:
    """Whether `reroll` would succeed now."""
    return (
        mykey.rerolls_used < MAX_REROLLS
        and _now(now) - _aware(mykey.created_at) <= REROLL_WINDOW
        and not _has_links(s, mykey.id)
    )


def reroll(s: Session, mykey_id: str, *, now: datetime | None = None) -> MyKeyID:
    """Swap the MyKey ID for a fresh one, as the real platform allowed a few times.

    Only right after creation (REROLL_WINDOW) and before any service link, so only the card
    binding points at the old ID; it moves to the new one and the old row goes.
    """
    old = get(s, mykey_id)
    if old.rerolls_used >= MAX_REROLLS:
        raise RerollLimit()
    if _now(now) - _aware(old.created_at) > REROLL_WINDOW or _has_links(s, old.id):
        raise RerollClosed()
    new = MyKeyID(id=_unused_id(s), created_at=old.created_at, rerolls_used=old.rerolls_used + 1)
    s.add(new)
    s.flush()
    s.execute(update(CardBinding).where(CardBinding.mykey_id == old.id).values(mykey_id=new.id))
    s.delete(old)
    s.commit()
    return new


def _check_terms(provider: Provider, accepted_terms_version: int | None) -> None:
    if not accepted_terms_version:
        raise TermsNotAccepted()
    if accepted_terms_version != provider.terms_version:
        raise TermsOutdated()


def _link_for(s: Session, mykey_id: str, provider_id: int) -> ServiceLink | None:
    stmt = select(ServiceLink).where(
        ServiceLink.mykey_id == mykey_id, ServiceLink.provider_id == provider_id
    )
    return s.scalar(stmt)


def _number_holder(s: Session, provider_id: int, number: str) -> str | None:
    stmt = select(ServiceLink.mykey_id).where(
        ServiceLink.provider_id == provider_id, ServiceLink.customer_number == number
    )
    return s.scalar(stmt)


def link(
    s: Session,
    mykey_id: str,
    provider: Provider,
    customer_number: str,
    accepted_terms_version: int | None,
    verified_by_staff: bool = False,
) -> ServiceLink:
    """Link a customer number of `provider` to the MyKey ID (one per provider, number unique)."""
    get(s, mykey_id)
    _check_terms(provider, accepted_terms_version)
    try:
        number = validate(customer_number, provider.number_rule)
    except NumberFormatError as exc:
        raise NumberInvalid(exc) from exc
    if _link_for(s, mykey_id, provider.id) is not None:
        raise AlreadyLinked()
    if _number_holder(s, provider.id, number) is not None:
        raise NumberTaken()
    row = ServiceLink(
        mykey_id=mykey_id,
        provider_id=provider.id,
        customer_number=number,
        accepted_terms_version=accepted_terms_version,
        verified_by_staff=verified_by_staff,
    )
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        # A concurrent request won the unique constraint: say which one.
        s.rollback()
        if _link_for(s, mykey_id, provider.id) is not None:
            raise AlreadyLinked() from None
        raise NumberTaken() from None
    return row


def accept_terms(s: Session, mykey_id: str, provider: Provider, version: int) -> ServiceLink:
    """Record that the citizen accepted the provider's current terms for an existing link."""
    row = _link_for(s, mykey_id, provider.id)
    if row is None:
        raise NoLink()
    _check_terms(provider, version)
    row.accepted_terms_version = version
    s.commit()
    return row


def unlink(s: Session, mykey_id: str, provider_id: int) -> None:
    """Remove the MyKey ID's link for the provider; NoLink if there is none."""
    row = _link_for(s, mykey_id, provider_id)
    if row is None:
        raise NoLink()
    s.delete(row)
    s.commit()


def links(s: Session, mykey_id: str) -> list[tuple[ServiceLink, Provider]]:
    """The MyKey ID's links with their providers, in the order they were made."""
    stmt = (
        select(ServiceLink, Provider)
        .join(Provider, Provider.id == ServiceLink.provider_id)
        .where(ServiceLink.mykey_id == mykey_id)
        .order_by(ServiceLink.id)
    )
    return [(row, provider) for row, provider in s.execute(stmt)]


@dataclass(frozen=True)
class LookupResult:
    """What the counter shows: the number, and whether the terms need re-accepting."""

    customer_number: str
    terms_outdated: bool
    verified_by_staff: bool


def lookup(
    s: Session, card_key: bytes | str, provider: Provider, *, today: date | None = None
) -> LookupResult:
    """The customer number this card holds at `provider` (NotRegistered / NoLink otherwise).

    Leaves no trace per person: only the provider's count for the day goes up.
    """
    binding = s.get(CardBinding, card_key_bytes(card_key))
    if binding is None:
        raise NotRegistered()
    row = _link_for(s, binding.mykey_id, provider.id)
    if row is None:
        raise NoLink()
    result = LookupResult(
        customer_number=row.customer_number,
        terms_outdated=row.accepted_terms_version != provider.terms_version,
        verified_by_staff=row.verified_by_staff,
    )
    _count(s, provider.id, today or datetime.now(JST).date())
    return result


def _count(s: Session, provider_id: int, day: date) -> None:
    """Add one to the provider's lookups for `day` (an upsert that works on SQLite and PG)."""
    bump = (
        update(LookupCount)
        .where(LookupCount.provider_id == provider_id, LookupCount.day == day)
        .values(count=LookupCount.count + 1)
    )
    if s.execute(bump).rowcount:  # type: ignore[attr-defined]
        s.commit()
        return
    s.add(LookupCount(provider_id=provider_id, day=day, count=1))
    try:
        s.commit()
    except IntegrityError:  # another worker inserted the day's row first
        s.rollback()
        s.execute(bump)
        s.commit()
