"""The officer's partners (their terms and API keys) and the expiry policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import admin, audit, partners
from ..errors import Code, InvalidInput, NotFound, Refused
from ..models import (
    ConversionTerms,
    Municipality,
    Partner,
    PartnerKey,
    PartnerKind,
    Program,
    ProgramCategory,
)
from . import MAX_BP, Officer, check_code, check_days, check_name, fields_of, unique_code


def partners_of(session: Session, who: Officer) -> list[tuple[Partner, ConversionTerms | None]]:
    """Partners the officer sees: those registered here, and platform partners whose
    points this municipality accepts; each with its terms here."""
    rows = session.execute(
        select(Partner, ConversionTerms)
        .outerjoin(
            ConversionTerms,
            (ConversionTerms.partner_id == Partner.id)
            & (ConversionTerms.municipality_id == who.municipality_id),
        )
        .where((Partner.municipality_id == who.municipality_id) | ConversionTerms.id.is_not(None))
        .order_by(Partner.code)
    )
    return [(p, t) for p, t in rows]


def own_partner(
    session: Session, who: Officer, partner_id: int
) -> tuple[Partner, ConversionTerms | None]:
    """A partner the officer sees, with its terms here; else NotFound."""
    for partner, terms in partners_of(session, who):
        if partner.id == partner_id:
            return partner, terms
    raise NotFound(Code.UNKNOWN_PARTNER)


TERMS_FIELDS = (
    "rate_num", "rate_den", "bonus_bp", "min_unit", "hold_days", "expiry_days",
    "bonus_program_id", "active",
)  # fmt: skip


def add_partner(
    session: Session,
    who: Officer,
    *,
    code: str,
    name: str,
    kind: PartnerKind,
    now: datetime | None = None,
) -> Partner:
    """A partner registered by this municipality; its terms and keys come next."""
    code, name = check_code(code), check_name(name)
    if session.scalar(select(Partner.id).where(Partner.code == code)) is not None:
        raise InvalidInput(Code.DUPLICATE_CODE, code)
    who.log(
        session,
        "partner.create",
        f"{code} {name}",
        audit.diff({}, {"name": name, "kind": kind.value}),
        now,
    )
    with unique_code(session, code):
        return admin.create_partner(
            session, code, name, kind, municipality_id=who.municipality_id, now=now
        )


def set_partner_terms(
    session: Session,
    who: Officer,
    partner_id: int,
    *,
    rate: tuple[int, int],
    bonus_bp: int,
    min_unit: int,
    hold_days: int,
    expiry_days: int,
    bonus_program_id: int | None,
    active: bool,
    now: datetime | None = None,
) -> ConversionTerms:
    """The municipality's terms for the partner: rate, bonus and its program, unit,
    holding period, validity, and whether conversions are taken at all."""
    partner, terms = own_partner(session, who, partner_id)
    if rate[0] <= 0 or rate[1] <= 0 or min_unit <= 0 or not 0 <= bonus_bp <= MAX_BP:
        raise InvalidInput(Code.INVALID_INPUT, "rate, bonus and unit")
    check_days(hold_days, "hold_days", low=0)
    check_days(expiry_days, "expiry_days")
    if bonus_program_id is not None:
        program = session.get(Program, bonus_program_id)
        if (
            program is None
            or program.municipality_id != who.municipality_id
            or program.category != ProgramCategory.PARTNER_BONUS
        ):
            raise InvalidInput(Code.INVALID_BONUS_PROGRAM)
    elif bonus_bp:
        raise InvalidInput(Code.INVALID_BONUS_PROGRAM)
    before = fields_of(terms, TERMS_FIELDS) if terms is not None else {}
    audit_before = dict(before)
    terms = admin.set_terms(
        session,
        who.municipality_id,
        partner.id,
        rate=rate,
        bonus_bp=bonus_bp,
        min_unit=min_unit,
        hold_days=hold_days,
        expiry_days=expiry_days,
        bonus_program_id=bonus_program_id,
        now=now,
        commit=False,
    )
    terms.active = active
    changes = audit.diff(audit_before, fields_of(terms, TERMS_FIELDS))
    if changes:
        who.log(session, "partner.terms", f"{partner.code} {partner.name}", changes, now)
    session.commit()
    return terms


def _own_keys_partner(session: Session, who: Officer, partner_id: int) -> Partner:
    partner, _terms = own_partner(session, who, partner_id)
    if partner.municipality_id != who.municipality_id:
        raise Refused(Code.PLATFORM_PARTNER)
    return partner


def issue_partner_key(
    session: Session, who: Officer, partner_id: int, *, now: datetime | None = None
) -> str:
    """A new API key for a partner registered here: the whole key is returned once, only
    its hash is kept; the log names its public key id."""
    partner = _own_keys_partner(session, who, partner_id)
    key = partners.issue_key(session, partner.id, now=now, commit=False)
    key_id = key.split("_")[1]
    who.log(
        session,
        "partner.key_issue",
        f"{partner.code} {partner.name}",
        {"key_id": [None, key_id]},
        now,
    )
    session.commit()
    return key


def revoke_partner_key(
    session: Session, who: Officer, partner_id: int, key_id: str, *, now: datetime | None = None
) -> None:
    """Revoke one of the partner's keys: requests with it fail from the next one on."""
    partner = _own_keys_partner(session, who, partner_id)
    key = session.scalar(
        select(PartnerKey).where(PartnerKey.key_id == key_id, PartnerKey.partner_id == partner.id)
    )
    if key is None:
        raise NotFound(Code.UNKNOWN_PARTNER)
    if key.revoked_at is None:
        who.log(
            session,
            "partner.key_revoke",
            f"{partner.code} {partner.name}",
            {"key_id": [key.key_id, None]},
            now,
        )
    partners.revoke_key(session, key.key_id, now=now)


def set_policy(
    session: Session,
    who: Officer,
    *,
    default_expiry_days: int,
    refund_window_days: int | None,
    now: datetime | None = None,
) -> Municipality:
    """The validity new programs and partners start from, and the refund window (None:
    the platform's; the window is also how long payments stay linked to the citizen)."""
    muni = session.get(Municipality, who.municipality_id)
    if muni is None:
        raise NotFound(Code.UNKNOWN_MUNICIPALITY)
    check_days(default_expiry_days, "default_expiry_days")
    if refund_window_days is not None:
        check_days(refund_window_days, "refund_window_days", low=0)
    fields = ("default_expiry_days", "refund_window_days")
    before = fields_of(muni, fields)
    muni.default_expiry_days = default_expiry_days
    muni.refund_window_days = refund_window_days
    changes = audit.diff(before, fields_of(muni, fields))
    if changes:
        who.log(session, "policy.update", muni.name, changes, now)
    session.commit()
    return muni
