"""Setting up a municipality's points: the municipality, partners, terms and merchants.

Each function commits its own transaction. Accounts are opened through the ledger, empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..places import codes
from . import ledger
from .errors import Code, InvalidInput, NotFound, Refused
from .models import (
    AcceptedCategory,
    Account,
    AccountKind,
    ConversionTerms,
    Merchant,
    MerchantCategory,
    Municipality,
    Partner,
    PartnerKind,
    Program,
    ProgramCategory,
)
from .validation import utc_now


def create_municipality(
    session: Session,
    code: str,
    name: str,
    *,
    categories: Iterable[MerchantCategory] = tuple(MerchantCategory),
    refund_window_days: int | None = None,
    now: datetime | None = None,
) -> Municipality:
    """A municipality with its issuance account and its expired-points sink."""
    try:
        # 全国地方公共団体コード with its check digit: the same validator as providers'.
        code = codes.validate(code).code
    except codes.CodeError as exc:
        raise InvalidInput(
            Code.INVALID_INPUT, f"code: the 6-digit local government code ({exc.reason})"
        ) from None
    if refund_window_days is not None and refund_window_days < 0:
        raise InvalidInput(Code.INVALID_INPUT, "refund_window_days: 0 or more")
    now = utc_now(now)
    muni = Municipality(code=code, name=name, refund_window_days=refund_window_days, created_at=now)
    session.add(muni)
    session.flush()
    for kind in (AccountKind.ISSUANCE, AccountKind.EXPIRED):
        ledger.open_account(session, muni.id, kind, "", now)
    for category in categories:
        session.add(AcceptedCategory(municipality_id=muni.id, category=category.value))
    session.commit()
    return muni


def municipality_by_code(session: Session, code: str) -> Municipality:
    """The municipality with this local government code, or NotFound."""
    muni = session.scalar(select(Municipality).where(Municipality.code == code))
    if muni is None:
        raise NotFound(Code.UNKNOWN_MUNICIPALITY)
    return muni


def system_account(session: Session, municipality_id: int, kind: AccountKind) -> Account:
    """The municipality's issuance account or expired sink."""
    account = session.scalar(
        select(Account).where(
            Account.municipality_id == municipality_id,
            Account.kind == kind.value,
            Account.owner == "",
        )
    )
    if account is None:
        raise NotFound(Code.UNKNOWN_MUNICIPALITY)
    return account


def create_partner(
    session: Session,
    code: str,
    name: str,
    kind: PartnerKind,
    *,
    municipality_id: int | None = None,
    now: datetime | None = None,
) -> Partner:
    """A partner company; its API keys are issued by webapp.points.partners. With
    `municipality_id`, that municipality's officers manage its keys in the UI."""
    partner = Partner(
        code=code,
        name=name,
        kind=kind.value,
        active=True,
        municipality_id=municipality_id,
        created_at=utc_now(now),
    )
    session.add(partner)
    session.commit()
    return partner


def set_terms(
    session: Session,
    municipality_id: int,
    partner_id: int,
    *,
    rate: tuple[int, int] = (1, 1),
    bonus_bp: int = 0,
    min_unit: int = 1,
    hold_days: int = 14,
    expiry_days: int = 365,
    bonus_program_id: int | None = None,
    now: datetime | None = None,
    commit: bool = True,
) -> ConversionTerms:
    """Accept a partner's points in this municipality at `rate` (num, den) plus a bonus.

    The bonus is paid from the budget of `bonus_program_id` (a partner_bonus program), the
    base from the partner's account here, which is opened on first use.
    """
    if rate[0] <= 0 or rate[1] <= 0 or bonus_bp < 0 or min_unit <= 0 or hold_days < 0:
        raise InvalidInput(Code.INVALID_INPUT, "rate, unit and hold must be positive")
    if bonus_bp and bonus_program_id is None:
        raise InvalidInput(Code.INVALID_INPUT, "a bonus needs a partner_bonus program")
    if bonus_program_id is not None:
        program = session.get(Program, bonus_program_id)
        if (
            program is None
            or program.municipality_id != municipality_id
            or program.category != ProgramCategory.PARTNER_BONUS
        ):
            raise InvalidInput(Code.INVALID_INPUT, "bonus_program_id: a partner_bonus program")
    terms = session.scalar(
        select(ConversionTerms).where(
            ConversionTerms.municipality_id == municipality_id,
            ConversionTerms.partner_id == partner_id,
        )
    )
    if terms is None:
        account = ledger.open_account(
            session, municipality_id, AccountKind.PARTNER, str(partner_id), utc_now(now)
        )
        terms = ConversionTerms(
            municipality_id=municipality_id, partner_id=partner_id, partner_account_id=account.id
        )
        session.add(terms)
    terms.rate_num, terms.rate_den = rate
    terms.bonus_bp = bonus_bp
    terms.min_unit = min_unit
    terms.hold_days = hold_days
    terms.expiry_days = expiry_days
    terms.bonus_program_id = bonus_program_id
    terms.active = True
    if commit:
        session.commit()
    else:
        session.flush()
    return terms


def accepted_categories(session: Session, municipality_id: int) -> set[str]:
    """The merchant categories the municipality accepts points for."""
    return set(
        session.scalars(
            select(AcceptedCategory.category).where(
                AcceptedCategory.municipality_id == municipality_id
            )
        )
    )


def create_merchant(
    session: Session,
    municipality_id: int,
    code: str,
    name: str,
    category: MerchantCategory,
    *,
    now: datetime | None = None,
) -> Merchant:
    """A merchant in one of the municipality's accepted categories, with its account."""
    if category.value not in accepted_categories(session, municipality_id):
        raise Refused(Code.NOT_ACCEPTED, f"category {category.value}")
    now = utc_now(now)
    account = ledger.open_account(session, municipality_id, AccountKind.MERCHANT, code, now)
    merchant = Merchant(
        municipality_id=municipality_id,
        code=code,
        name=name,
        category=category.value,
        account_id=account.id,
        active=True,
        created_at=now,
    )
    session.add(merchant)
    session.commit()
    return merchant
