"""The officer's programs: create, change terms and dates, pause, add to the budget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from .. import programs as grant_programs
from ..errors import Code, InvalidInput, NotFound, Refused
from ..models import AuditEntry, Program, ProgramCategory
from ..validation import utc_now
from . import Officer, check_code, check_dates, check_days, check_name, fields_of, unique_code

PROGRAM_FIELDS = (
    "name",
    "category",
    "points_per_grant",
    "expiry_days",
    "cap_points_per_citizen",
    "cap_grants_per_citizen",
    "starts_at",
    "ends_at",
    "active",
)


def own_program(session: Session, who: Officer, program_id: int) -> Program:
    """The officer's program, or NotFound (another city's program does not exist here)."""
    program = session.get(Program, program_id)
    if program is None or program.municipality_id != who.municipality_id:
        raise NotFound(Code.UNKNOWN_PROGRAM)
    return program


def _caps(points: int | None, grants: int | None) -> None:
    for value in (points, grants):
        if value is not None and value <= 0:
            raise InvalidInput(Code.INVALID_INPUT, "caps: 1 or more, or none")


def add_program(
    session: Session,
    who: Officer,
    *,
    code: str,
    name: str,
    category: ProgramCategory,
    points_per_grant: int,
    expiry_days: int,
    budget: int,
    cap_points_per_citizen: int | None = None,
    cap_grants_per_citizen: int | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Program:
    """A new program with its budget, logged with every field it starts with."""
    code, name = check_code(code), check_name(name)
    check_days(expiry_days, "expiry_days")
    _caps(cap_points_per_citizen, cap_grants_per_citizen)
    check_dates(starts_at, ends_at)
    taken = session.scalar(
        select(Program.id).where(
            Program.municipality_id == who.municipality_id, Program.code == code
        )
    )
    if taken is not None:
        raise InvalidInput(Code.DUPLICATE_CODE, code)
    now = utc_now(now)
    values = {
        "name": name,
        "category": category.value,
        "points_per_grant": points_per_grant,
        "expiry_days": expiry_days,
        "budget": budget,
        "cap_points_per_citizen": cap_points_per_citizen,
        "cap_grants_per_citizen": cap_grants_per_citizen,
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
    who.log(session, "program.create", f"{code} {name}", audit.diff({}, values), now)
    # create_program commits the program with the entry above, then funds its budget.
    with unique_code(session, code):
        return grant_programs.create_program(
            session,
            who.municipality_id,
            code,
            name,
            category,
            points_per_grant=points_per_grant,
            expiry_days=expiry_days,
            budget=budget,
            cap_points_per_citizen=cap_points_per_citizen,
            cap_grants_per_citizen=cap_grants_per_citizen,
            starts_at=starts_at,
            ends_at=ends_at,
            now=now,
        )


def update_program(
    session: Session,
    who: Officer,
    program_id: int,
    *,
    name: str,
    points_per_grant: int,
    expiry_days: int,
    cap_points_per_citizen: int | None,
    cap_grants_per_citizen: int | None,
    starts_at: datetime | None,
    ends_at: datetime | None,
    now: datetime | None = None,
) -> Program:
    """Change a program's terms; they apply to the next payment on every worker.

    Caps may only be raised: the counters exist only for programs capped from the
    start, and a lower cap would leave citizens already past it (the audit would flag it).
    """
    program = own_program(session, who, program_id)
    name = check_name(name)
    if points_per_grant <= 0:
        raise InvalidInput(Code.INVALID_AMOUNT, "points_per_grant")
    check_days(expiry_days, "expiry_days")
    _caps(cap_points_per_citizen, cap_grants_per_citizen)
    check_dates(starts_at, ends_at)
    for old, new in (
        (program.cap_points_per_citizen, cap_points_per_citizen),
        (program.cap_grants_per_citizen, cap_grants_per_citizen),
    ):
        if (old is None) != (new is None) or (old is not None and new is not None and new < old):
            raise Refused(Code.CAPS_ONLY_RAISED)
    before = fields_of(program, PROGRAM_FIELDS)
    program.name = name
    program.points_per_grant = points_per_grant
    program.expiry_days = expiry_days
    program.cap_points_per_citizen = cap_points_per_citizen
    program.cap_grants_per_citizen = cap_grants_per_citizen
    program.starts_at = starts_at
    program.ends_at = ends_at
    _log_change(session, who, "program.update", program, before, now)
    session.commit()
    return program


def _log_change(
    session: Session,
    who: Officer,
    action: str,
    program: Program,
    before: dict[str, Any],
    now: datetime | None,
) -> None:
    changes = audit.diff(before, fields_of(program, PROGRAM_FIELDS))
    if changes:
        who.log(session, action, f"{program.code} {program.name}", changes, now)


def set_paused(
    session: Session, who: Officer, program_id: int, paused: bool, *, now: datetime | None = None
) -> Program:
    """Pause or resume a program: a payment whose terms are read after this commits obeys."""
    program = own_program(session, who, program_id)
    before = fields_of(program, PROGRAM_FIELDS)
    program.active = not paused
    _log_change(
        session, who, "program.resume" if not paused else "program.pause", program, before, now
    )
    session.commit()
    return program


def add_budget(
    session: Session,
    who: Officer,
    program_id: int,
    points: int,
    *,
    key: str,
    now: datetime | None = None,
) -> None:
    """Add points to a program's budget (a funding transfer); the form's key makes a
    resubmit a replay, logged once."""
    program = own_program(session, who, program_id)
    subject = f"{program.code} {program.name}"
    full_key = f"page:{who.municipality_id}:{key}"
    session.commit()  # end the read; the funding is its own transaction
    written = grant_programs.fund(session, program_id, points, key=full_key, now=now)
    logged = session.scalar(
        select(AuditEntry.id).where(
            AuditEntry.municipality_id == who.municipality_id,
            AuditEntry.action == "program.fund",
            AuditEntry.subject == subject,
            AuditEntry.changes[("transfer", 1)].as_integer() == written.id,
        )
    )
    if logged is None:
        who.log(
            session,
            "program.fund",
            subject,
            {"budget_added": [None, points], "transfer": [None, written.id]},
            now,
        )
        session.commit()
