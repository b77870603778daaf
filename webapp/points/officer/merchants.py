"""The officer's merchants: create and change them, their tills and their staff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...providers.models import Provider, ProviderKind
from ...staff import services as staff_services
from ...staff.models import Role, StaffUser
from ...terminals import services as terminal_services
from ...terminals.models import Terminal, TerminalKind
from .. import admin, audit
from ..errors import Code, InvalidInput, NotFound, Refused
from ..models import Merchant, MerchantCategory, Municipality
from . import Officer, check_code, check_name, fields_of, unique_code


def own_merchant(session: Session, who: Officer, merchant_id: int) -> Merchant:
    """The officer's merchant, or NotFound."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or merchant.municipality_id != who.municipality_id:
        raise NotFound(Code.UNKNOWN_MERCHANT)
    return merchant


def add_merchant(
    session: Session,
    who: Officer,
    *,
    code: str,
    name: str,
    category: MerchantCategory,
    now: datetime | None = None,
) -> Merchant:
    """A new merchant in one of the municipality's accepted categories, with its account."""
    code, name = check_code(code), check_name(name)
    taken = session.scalar(
        select(Merchant.id).where(
            Merchant.municipality_id == who.municipality_id, Merchant.code == code
        )
    )
    if taken is not None:
        raise InvalidInput(Code.DUPLICATE_CODE, code)
    who.log(
        session,
        "merchant.create",
        f"{code} {name}",
        audit.diff({}, {"name": name, "category": category.value}),
        now,
    )
    with unique_code(session, code):
        return admin.create_merchant(session, who.municipality_id, code, name, category, now=now)


def update_merchant(
    session: Session,
    who: Officer,
    merchant_id: int,
    *,
    name: str,
    category: MerchantCategory,
    active: bool,
    now: datetime | None = None,
) -> Merchant:
    """Rename, recategorise, close or reopen a merchant (a closed one takes no payment)."""
    merchant = own_merchant(session, who, merchant_id)
    name = check_name(name)
    if category.value not in admin.accepted_categories(session, who.municipality_id):
        raise Refused(Code.NOT_ACCEPTED, category.value)
    fields = ("name", "category", "active")
    before = fields_of(merchant, fields)
    merchant.name, merchant.category, merchant.active = name, category.value, active
    changes = audit.diff(before, fields_of(merchant, fields))
    if changes:
        who.log(session, "merchant.update", f"{merchant.code} {merchant.name}", changes, now)
    session.commit()
    return merchant


def tills_provider(session: Session, municipality: Municipality) -> Provider:
    """The provider the municipality's merchant tills are filed under (made on first use):
    a till is a terminal, and every staffed terminal belongs to a provider."""
    code = f"points-{municipality.code}"
    for _ in range(2):
        provider = session.scalar(select(Provider).where(Provider.code == code))
        if provider is not None:
            return provider
        session.add(
            Provider(
                code=code,
                kind=ProviderKind.OTHER,
                name_ja=f"{municipality.name} ポイント加盟店",
                name_en=f"{municipality.name} points merchants",
            )
        )
        try:
            session.commit()
        except IntegrityError:  # another officer's first till made it meanwhile
            session.rollback()
    raise RuntimeError("could not make the tills provider")  # pragma: no cover


def tills_of(session: Session, who: Officer) -> list[Terminal]:
    """The tills of the municipality's merchants, by id."""
    return list(
        session.scalars(
            select(Terminal)
            .join(Merchant, Merchant.id == Terminal.merchant_id)
            .where(
                Merchant.municipality_id == who.municipality_id,
                Terminal.kind == TerminalKind.MERCHANT,
            )
            .order_by(Terminal.id)
        )
    )


def own_till(session: Session, who: Officer, terminal_id: int) -> Terminal:
    """A till of one of the officer's merchants, or NotFound."""
    terminal = session.get(Terminal, terminal_id)
    merchant = (
        session.get(Merchant, terminal.merchant_id)
        if terminal is not None and terminal.merchant_id is not None
        else None
    )
    if terminal is None or merchant is None or merchant.municipality_id != who.municipality_id:
        raise NotFound(Code.UNKNOWN_TILL)
    return terminal


def add_till(
    session: Session, who: Officer, merchant_id: int, name: str, *, now: datetime | None = None
) -> Terminal:
    """A new till bound to the merchant; it works once a bridge is paired to it."""
    merchant = own_merchant(session, who, merchant_id)
    name = check_name(name)
    municipality = session.get(Municipality, who.municipality_id)
    assert municipality is not None  # noqa: S101  (the merchant's, a foreign key)
    provider = tills_provider(session, municipality)
    who.log(session, "till.create", name, {"merchant": [None, merchant.code]}, now)
    return terminal_services.create_terminal(
        session, provider.id, TerminalKind.MERCHANT, name, merchant_id=merchant.id
    )


def move_till(
    session: Session,
    who: Officer,
    terminal_id: int,
    merchant_id: int,
    *,
    now: datetime | None = None,
) -> Terminal:
    """Bind one of the municipality's tills to another of its merchants (the old
    merchant's staff lose it from their next request)."""
    terminal = own_till(session, who, terminal_id)
    merchant = own_merchant(session, who, merchant_id)
    old = session.get(Merchant, terminal.merchant_id or 0)
    if old is not None and old.id != merchant.id:
        who.log(session, "till.bind", terminal.name, {"merchant": [old.code, merchant.code]}, now)
    return terminal_services.set_merchant(session, terminal.id, merchant.id)


def till_pairing_code(
    session: Session, who: Officer, terminal_id: int, *, now: datetime | None = None
) -> terminal_services.IssuedCode:
    """A one-time code to pair the till's bridge (shown once, ten minutes)."""
    terminal = own_till(session, who, terminal_id)
    who.log(session, "till.pairing_code", terminal.name, {}, now)
    return terminal_services.create_pairing_code(session, terminal.id)


def staff_of(session: Session, merchant: Merchant) -> list[StaffUser]:
    """The merchant's staff accounts, by login."""
    return list(
        session.scalars(
            select(StaffUser).where(StaffUser.merchant_id == merchant.id).order_by(StaffUser.login)
        )
    )


def add_staff(
    session: Session,
    who: Officer,
    merchant_id: int,
    login: str,
    password: str,
    *,
    now: datetime | None = None,
) -> StaffUser:
    """A staff account for the merchant (its settlement, refunds and tills); a refused
    login or password raises the staff service's StaffError, in both languages."""
    merchant = own_merchant(session, who, merchant_id)
    who.log(
        session,
        "staff.create",
        staff_services.normalize_login(login),
        {"merchant": [None, merchant.code], "role": [None, Role.MERCHANT_STAFF.value]},
        now,
    )
    try:
        return staff_services.create_staff(
            session, login, password, Role.MERCHANT_STAFF, merchant_id=merchant.id
        )
    except staff_services.StaffError:
        session.rollback()  # the entry goes with the refused account
        raise


def set_staff_active(
    session: Session, who: Officer, staff_id: int, active: bool, *, now: datetime | None = None
) -> StaffUser:
    """Disable (ending its sessions at once) or re-enable a staff account of a merchant
    of the municipality."""
    user = session.get(StaffUser, staff_id)
    merchant = session.get(Merchant, user.merchant_id or 0) if user is not None else None
    if user is None or merchant is None or merchant.municipality_id != who.municipality_id:
        raise NotFound(Code.UNKNOWN_STAFF)
    if user.active != active:
        who.log(
            session,
            "staff.enable" if active else "staff.disable",
            user.login,
            {"active": [user.active, active]},
            now,
        )
        staff_services.set_active(session, user, active)
    return user
