"""The officer's causes and crowdfunding projects (寄付先・クラウドファンディング)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, ledger
from ..causes import cause_owner
from ..errors import Code, InvalidInput, NotFound, Refused
from ..models import MAX_POINTS, AccountKind, Cause, CauseKind, CauseStatus, MissPolicy
from ..validation import utc_now
from . import Officer, check_code, check_days, check_name, fields_of, unique_code

DESCRIPTION_MAX = 1000
FIELDS = ("name", "description", "miss_policy", "fresh_days", "status")


def own_cause(session: Session, who: Officer, cause_id: int) -> Cause:
    """The officer's cause or project, or NotFound."""
    cause = session.get(Cause, cause_id)
    if cause is None or cause.municipality_id != who.municipality_id:
        raise NotFound(Code.UNKNOWN_CAUSE)
    return cause


def _description(text: str) -> str:
    text = text.strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidInput(Code.INVALID_INPUT, f"description: up to {DESCRIPTION_MAX}")
    return text


def add_cause(
    session: Session,
    who: Officer,
    *,
    code: str,
    name: str,
    description: str,
    kind: CauseKind,
    goal_points: int | None,
    ends_at: datetime | None,
    miss_policy: MissPolicy,
    fresh_days: int,
    now: datetime | None = None,
) -> Cause:
    """A new cause (donations while open) or project (a goal and an end), with its account."""
    now = utc_now(now)
    code, name = check_code(code), check_name(name)
    description = _description(description)
    fresh_days = check_days(fresh_days, "fresh_days")
    if kind is CauseKind.PROJECT:
        if goal_points is None or not 0 < goal_points <= MAX_POINTS:
            raise InvalidInput(Code.INVALID_AMOUNT, "goal")
        if ends_at is None or ends_at <= now:
            raise InvalidInput(Code.INVALID_DATES)
    else:
        goal_points, ends_at = None, None
    taken = session.scalar(
        select(Cause.id).where(Cause.municipality_id == who.municipality_id, Cause.code == code)
    )
    if taken is not None:
        raise InvalidInput(Code.DUPLICATE_CODE, code)
    with unique_code(session, code):
        account = ledger.open_account(
            session, who.municipality_id, AccountKind.MERCHANT, cause_owner(code), now
        )
        cause = Cause(
            municipality_id=who.municipality_id,
            code=code,
            name=name,
            description=description,
            kind=kind.value,
            account_id=account.id,
            goal_points=goal_points,
            ends_at=ends_at,
            miss_policy=miss_policy.value,
            fresh_days=fresh_days,
            status=CauseStatus.OPEN.value,
            created_at=now,
        )
        session.add(cause)
        after = {"kind": kind.value, "name": name, "miss_policy": miss_policy.value}
        if goal_points is not None:
            after |= {
                "goal_points": goal_points,
                "ends_at": ends_at.isoformat() if ends_at else None,
            }
        who.log(session, "cause.create", f"{code} {name}", audit.diff({}, after), now)
        session.commit()
    return cause


def update_cause(
    session: Session,
    who: Officer,
    cause_id: int,
    *,
    name: str,
    description: str,
    open_: bool,
    miss_policy: MissPolicy,
    fresh_days: int,
    now: datetime | None = None,
) -> Cause:
    """Rename, describe, close or reopen; a project's policy on a missed goal may change
    until it is settled (never after: its points were kept or returned by then)."""
    cause = own_cause(session, who, cause_id)
    name, description = check_name(name), _description(description)
    fresh_days = check_days(fresh_days, "fresh_days")
    settled = cause.status not in (CauseStatus.OPEN, CauseStatus.CLOSED)
    if settled and (
        open_ or miss_policy.value != cause.miss_policy or fresh_days != cause.fresh_days
    ):
        raise Refused(Code.CAUSE_CLOSED)
    before = fields_of(cause, FIELDS)
    cause.name, cause.description = name, description
    if not settled:
        cause.status = (CauseStatus.OPEN if open_ else CauseStatus.CLOSED).value
        cause.miss_policy, cause.fresh_days = miss_policy.value, fresh_days
    changes = audit.diff(before, fields_of(cause, FIELDS))
    if changes:
        who.log(session, "cause.update", f"{cause.code} {cause.name}", changes, now)
    session.commit()
    return cause


def causes_of(session: Session, who: Officer) -> list[Cause]:
    """The municipality's causes and projects, by code."""
    return list(
        session.scalars(
            select(Cause).where(Cause.municipality_id == who.municipality_id).order_by(Cause.code)
        )
    )
