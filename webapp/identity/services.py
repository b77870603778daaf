"""Identity services: open or create a MyKey ID, re-roll it, link and look up service IDs.

Plain Python over a SQLAlchemy session (no Flask). Each mutating call commits its own unit
of work; a typed error (errors.py) means nothing was written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from .. import pglane, pgraw
from ..providers.models import Provider
from ..providers.numbers import NumberFormatError, validate
from . import counts
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
from .models import (
    CARD_KEY_LENGTH,
    MYKEY_ID_LENGTH,
    CardBinding,
    MyKeyID,
    ServiceLink,
    Verification,
)
from .renewal import move_points_accounts

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


def can_reroll(
    s: Session, mykey: MyKeyID, *, now: datetime | None = None, has_links: bool | None = None
) -> bool:
    """Whether `reroll` would succeed now (`has_links` when the caller has read them)."""
    if mykey.rerolls_used >= MAX_REROLLS or _now(now) - _aware(mykey.created_at) > REROLL_WINDOW:
        return False
    return not (_has_links(s, mykey.id) if has_links is None else has_links)


def reroll(s: Session, mykey_id: str, *, now: datetime | None = None) -> MyKeyID:
    """Swap the MyKey ID for a fresh one, as the real platform allowed a few times.

    Only right after creation (REROLL_WINDOW) and before any service link. The card
    binding and the citizen's points accounts (points granted meanwhile) move to the new
    ID, then the old row goes: nothing is left pointing at the old ID.
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
    move_points_accounts(s, old.id, new.id)
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


# The MyKey ID and its link's id at a provider, one read on the session's connection
# (a link's hot path: plain columns, built once; the link itself is loaded only when
# there is one).
_OWN_LINK = (
    select(MyKeyID.id, ServiceLink.id)
    .outerjoin(
        ServiceLink,
        (ServiceLink.mykey_id == MyKeyID.id)
        & (ServiceLink.provider_id == bindparam("provider_id")),
    )
    .where(MyKeyID.id == bindparam("mykey_id"))
)

# The other citizens' unverified claims on a number (dropped when it is verified). Other
# citizens' rows: none is in the session, so it runs on the session's connection, as
# Core, without the ORM looking for them there.
_OTHER_CLAIMS = (
    delete(ServiceLink)
    .where(
        ServiceLink.provider_id == bindparam("provider_id"),
        ServiceLink.customer_number == bindparam("number"),
        ServiceLink.mykey_id != bindparam("mykey_id"),
        ServiceLink.verification == Verification.UNVERIFIED,
    )
    .execution_options(synchronize_session=False)
)


# A new link, written verified: one INSERT of the table (the unit of work's bookkeeping
# for one new row was most of a verified link's time in the ORM).
_LINKS = ServiceLink.__table__
_NEW_LINK = insert(_LINKS).returning(_LINKS.c.id)


def _own_link(s: Session, mykey_id: str, provider_id: int) -> ServiceLink | None:
    """The MyKey ID's link at the provider (None: no link), or NotRegistered when there
    is no such MyKey ID: one read for the two (and the link's own load when there is one)."""
    params = {"provider_id": provider_id, "mykey_id": mykey_id}
    row = s.connection().execute(_OWN_LINK, params).first()
    if row is None:
        raise NotRegistered()
    return None if row[1] is None else s.get(ServiceLink, row[1])


def _verified_holder(s: Session, provider_id: int, number: str) -> ServiceLink | None:
    """The link that holds `number` verified at the provider, if any."""
    stmt = select(ServiceLink).where(
        ServiceLink.provider_id == provider_id,
        ServiceLink.customer_number == number,
        ServiceLink.verification.in_(Verification.VERIFIED),
    )
    return s.scalar(stmt)


def link(
    s: Session,
    mykey_id: str,
    provider: Provider,
    customer_number: str,
    accepted_terms_version: int | None,
    verification: str = Verification.UNVERIFIED,
    *,
    now: datetime | None = None,
) -> ServiceLink:
    """Link a customer number of `provider` to the MyKey ID (one link per provider).

    Unverified, it is a claim: it never says whether someone else claims or holds the
    number (several citizens may claim one). Verified (staff saw the card, or the
    library's system said so), the number becomes this citizen's: NumberTaken if another
    citizen holds it verified, and every other claim on it goes.
    """
    if verification not in Verification.ALL:
        raise ValueError(f"unknown verification {verification!r}")
    own = _own_link(s, mykey_id, provider.id)
    _check_terms(provider, accepted_terms_version)
    try:
        number = validate(customer_number, provider.number_rule)
    except NumberFormatError as exc:
        raise NumberInvalid(exc) from exc
    if own is not None:
        upgrade = verification in Verification.VERIFIED and not own.verified
        if upgrade and own.customer_number == number:
            own.accepted_terms_version = accepted_terms_version
            return _verify(s, own, verification, now)
        raise AlreadyLinked()
    row = ServiceLink(
        mykey_id=mykey_id,
        provider_id=provider.id,
        customer_number=number,
        accepted_terms_version=accepted_terms_version,
        verification=Verification.UNVERIFIED,
    )
    if verification in Verification.VERIFIED:
        return _verify(s, row, verification, now)
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        # A concurrent request of the same citizen linked this provider first.
        s.rollback()
        raise AlreadyLinked() from None
    return row


def check_link(
    s: Session,
    mykey_id: str,
    provider: Provider,
    customer_number: str,
    accepted_terms_version: int | None,
) -> str:
    """What `link` would refuse before anyone is asked (terms, the number's rule, a link
    of this citizen to another number or already verified); the normalized number.
    Writes nothing, and says nothing about other citizens' links."""
    own = _own_link(s, mykey_id, provider.id)
    _check_terms(provider, accepted_terms_version)
    try:
        number = validate(customer_number, provider.number_rule)
    except NumberFormatError as exc:
        raise NumberInvalid(exc) from exc
    if own is not None and (own.customer_number != number or own.verified):
        raise AlreadyLinked()
    return number


def verify(
    s: Session,
    mykey_id: str,
    provider_id: int,
    verification: str,
    *,
    number: str | None = None,
    now: datetime | None = None,
) -> ServiceLink:
    """Mark the citizen's link verified (`number`, when given, must be the linked one:
    what staff checked the card against). NumberTaken if another citizen holds the
    number verified; the other claims on it go."""
    if verification not in Verification.VERIFIED:
        raise ValueError(f"not a verification: {verification!r}")
    row = _link_for(s, mykey_id, provider_id)
    if row is None or (number is not None and row.customer_number != number):
        raise NoLink()
    if row.verified:
        return row
    return _verify(s, row, verification, now)


def _verify(s: Session, row: ServiceLink, verification: str, now: datetime | None) -> ServiceLink:
    """Make `row` (new or a claim) the verified holder of its number, in one transaction.

    The unique index on verified numbers decides: the row is written verified first (a
    number another citizen holds verified fails there, and under parallel requests only
    one can win), then the other claims on the number go."""
    row.verification = verification
    row.verified_at = _now(now)
    try:
        if row.id is None:
            # New: inserted as it is, and handed back as the caller built it (not in the
            # session: nothing later in the request writes it again).
            row.id = (
                s.connection()
                .execute(
                    _NEW_LINK,
                    {
                        "mykey_id": row.mykey_id,
                        "provider_id": row.provider_id,
                        "customer_number": row.customer_number,
                        "accepted_terms_version": row.accepted_terms_version,
                        "verification": row.verification,
                        "verified_at": row.verified_at,
                    },
                )
                .scalar_one()
            )
        else:
            s.add(row)
            s.flush()
        # The other claims on the number go: the number is proven to be this citizen's.
        s.connection().execute(
            _OTHER_CLAIMS,
            {
                "provider_id": row.provider_id,
                "number": row.customer_number,
                "mykey_id": row.mykey_id,
            },
        )
        s.commit()
    except IntegrityError:
        # Another citizen's verification of the same number won the unique index, or this
        # citizen linked the provider concurrently.
        s.rollback()
        if row.id is None and _link_for(s, row.mykey_id, row.provider_id) is not None:
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
    verification: str

    @property
    def verified(self) -> bool:
        """Shown to belong to the citizen (staff, or the library's system)."""
        return self.verification in Verification.VERIFIED


def lookup(
    s: Session, card_key: bytes | str, provider: Provider, *, today: date | None = None
) -> LookupResult:
    """The customer number this card holds at `provider` (NotRegistered / NoLink otherwise).

    Leaves no trace per person: only the provider's count for the day goes up (in the
    worker, written by `counts.flush` within FLUSH_SECONDS): one read, no write.
    """
    return _looked_up(s, provider, _binding_link(s, card_key_bytes(card_key), provider.id), today)


class UnknownProvider(LookupError):
    """No provider has that id (a terminal's provider deleted under it)."""


def lookup_at(
    s: Session,
    card_key: bytes | str,
    provider_id: int,
    *,
    before: Callable[[Provider], None] | None = None,
    today: date | None = None,
) -> tuple[Provider, LookupResult]:
    """`lookup` at a provider known by its id, for a counter tap, in one round trip: when
    the tap's session has read the provider already (the counter's push reads the
    terminal and its provider), the binding and the link alone, three columns, by a
    prepared statement on PostgreSQL (`_tap_binding_link`: what is committed, so only for
    a tap, which writes nothing first); otherwise the provider, the binding and the link
    in one query. `before(provider)` may refuse (raise) before anything is answered or
    counted; UnknownProvider if there is no such provider."""
    key = card_key_bytes(card_key)
    provider = s.identity_map.get(identity_key(Provider, provider_id))
    if isinstance(provider, Provider):
        if before is not None:
            before(provider)
        return provider, _looked_up(s, provider, _tap_binding_link(s, key, provider_id), today)
    row = s.execute(
        select(Provider, CardBinding.mykey_id, ServiceLink)
        .select_from(Provider)
        .outerjoin(CardBinding, CardBinding.card_key == key)
        .outerjoin(
            ServiceLink,
            (ServiceLink.mykey_id == CardBinding.mykey_id)
            & (ServiceLink.provider_id == Provider.id),
        )
        .where(Provider.id == provider_id)
    ).first()
    if row is None:
        raise UnknownProvider(provider_id)
    provider = row[0]
    if before is not None:
        before(provider)
    found, link = None, row[2]
    if row[1] is not None and link is None:
        found = _Found(row[1])
    elif row[1] is not None:
        found = _Found(row[1], link.customer_number, link.accepted_terms_version, link.verification)
    return provider, _looked_up(s, provider, found, today)


class _Found(NamedTuple):
    """The card's binding and, when there is one, its link at the provider."""

    mykey_id: str
    customer_number: str | None = None
    accepted_terms_version: int | None = None
    verification: str | None = None


# The card's binding and, when there is one, its link at a provider: one indexed read,
# plain columns (a counter tap's hot path): on PostgreSQL through the session's psycopg
# connection (webapp.pgraw), elsewhere through Core; the same statement every time.
_BINDING_LINK = (
    select(
        CardBinding.mykey_id,
        ServiceLink.customer_number,
        ServiceLink.accepted_terms_version,
        ServiceLink.verification,
    )
    .outerjoin(
        ServiceLink,
        (ServiceLink.mykey_id == CardBinding.mykey_id)
        & (ServiceLink.provider_id == bindparam("provider_id")),
    )
    .where(CardBinding.card_key == bindparam("card_key"))
)
_BINDING_LINK_PG = (
    "SELECT b.mykey_id, l.customer_number, l.accepted_terms_version, l.verification"
    " FROM card_bindings b LEFT OUTER JOIN service_links l"
    " ON l.mykey_id = b.mykey_id AND l.provider_id = %s"
    " WHERE b.card_key = %s"
)


def _binding_link(s: Session, key: bytes, provider_id: int) -> _Found | None:
    """The binding-and-link row (None: the card has no MyKey ID), read on the session's
    connection in its transaction (what the session holds unwritten is written first)."""
    s.flush()
    conn = s.connection()
    raw = pgraw.connection(conn)
    if raw is not None:
        row = raw.row(_BINDING_LINK_PG, (provider_id, key))
    else:
        row = conn.execute(_BINDING_LINK, {"card_key": key, "provider_id": provider_id}).first()
    return None if row is None else _Found(*row)


def _tap_binding_link(s: Session, key: bytes, provider_id: int) -> _Found | None:
    """`_binding_link` for a tap, which writes nothing before its lookup: on PostgreSQL,
    as a statement prepared on a lane connection (webapp.pglane: autocommit, so it reads
    what is committed), one round trip without planning; the session's own connection
    when no lane connection is free, on SQLite, or when the session holds changes."""
    bind = s.get_bind(CardBinding)
    lane = None
    if isinstance(bind, Engine) and not (s.new or s.dirty or s.deleted):
        lane = pglane.lane(bind)
    if lane is None:
        return _binding_link(s, key, provider_id)
    with lane.take() as raw:
        if raw is not None:
            row = raw.row(_BINDING_LINK_PG, (provider_id, key))
            return None if row is None else _Found(*row)
    return _binding_link(s, key, provider_id)  # every lane connection busy


def _looked_up(
    s: Session, provider: Provider, found: _Found | None, today: date | None
) -> LookupResult:
    """The answer from the binding-and-link row (None: no binding; its customer number
    None: no link here), counted; or the refusal."""
    if found is None:
        raise NotRegistered()
    if found.customer_number is None:
        raise NoLink()
    result = LookupResult(
        customer_number=found.customer_number,
        terms_outdated=found.accepted_terms_version != provider.terms_version,
        verification=str(found.verification),
    )
    counts.add(s, provider.id, today or datetime.now(JST).date())
    return result
