"""Municipal grant programs (自治体ポイント): budgets, grants one by one, revocations.

A program's budget is its own account, funded from the municipality's issuance account;
the ledger refuses any grant that would take it below zero. Grants by CSV file are in
webapp.points.grant_csv.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import pgraw as pg
from . import ledger
from .admin import system_account
from .directory import CitizenDirectory
from .errors import Code, InvalidInput, NotFound, Refused
from .grant_pg import grant_alone
from .ledger import Acct, Caps, Posting, Written
from .models import (
    MAX_POINTS,
    AccountKind,
    PointLot,
    Program,
    ProgramCategory,
    Transfer,
    TransferKind,
    table,
)
from .validation import amount as check_amount
from .validation import idempotency_key, mykey_id, payload_hash, utc_now


@dataclass(frozen=True, slots=True)
class GrantResult:
    """What staff see after a grant (付与結果)."""

    transfer_id: int
    program_code: str
    mykey_id: str
    points: int
    expires_at: datetime
    balance: int | None
    replayed: bool = False


def create_program(
    session: Session,
    municipality_id: int,
    code: str,
    name: str,
    category: ProgramCategory,
    *,
    points_per_grant: int,
    expiry_days: int,
    budget: int,
    cap_points_per_citizen: int | None = None,
    cap_grants_per_citizen: int | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Program:
    """A program with a budget account funded with `budget` points from issuance; it pays
    from `starts_at` until `ends_at` (None: no bound)."""
    check_amount(points_per_grant, "points_per_grant")
    check_amount(budget, "budget")
    if expiry_days <= 0:
        raise InvalidInput(Code.INVALID_INPUT, "expiry_days: 1 or more")
    now = utc_now(now)
    account = ledger.open_account(session, municipality_id, AccountKind.PROGRAM, code, now)
    program = Program(
        municipality_id=municipality_id,
        code=code,
        name=name,
        category=category.value,
        points_per_grant=points_per_grant,
        expiry_days=expiry_days,
        cap_points_per_citizen=cap_points_per_citizen,
        cap_grants_per_citizen=cap_grants_per_citizen,
        account_id=account.id,
        active=True,
        starts_at=starts_at,
        ends_at=ends_at,
        created_at=now,
    )
    session.add(program)
    session.commit()
    fund(session, program.id, budget, key=f"budget:{program.id}:initial", now=now)
    return program


def fund(
    session: Session, program_id: int, points: int, *, key: str, now: datetime | None = None
) -> Written:
    """Add `points` to a program's budget (issuance -> program); idempotent on `key`."""
    check_amount(points, "points")
    now = utc_now(now)
    program = _program(session, program_id)
    issuance = system_account(session, program.municipality_id, AccountKind.ISSUANCE)
    digest = payload_hash({"op": "fund", "program": program_id, "points": points})
    full_key = f"fund:{idempotency_key(key)}"
    posting = Posting(
        kind=TransferKind.FUNDING,
        debit=Acct(AccountKind.ISSUANCE, program.municipality_id, id=issuance.id),
        credit=Acct(AccountKind.PROGRAM, program.municipality_id, id=program.account_id),
        amount=points,
        key=full_key,
        payload_hash=digest,
        program_id=program.id,
    )

    def replay() -> Written | None:
        first = ledger.find(session, full_key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        return ledger.as_written(first)

    return ledger.run(session, lambda: ledger.write(session, [posting], now)[0], replay)


def _program(session: Session, program_id: int) -> Program:
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound(Code.UNKNOWN_PROGRAM)
    return program


@dataclass(frozen=True, slots=True)
class ProgramTerms:
    """What a grant needs of a program, read by one Core query (the hot path skips the ORM)."""

    id: int
    municipality_id: int
    code: str
    category: str
    points_per_grant: int
    expiry_days: int
    cap_points_per_citizen: int | None
    cap_grants_per_citizen: int | None
    account_id: int
    active: bool
    starts_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def of(cls, program: Program) -> ProgramTerms:
        """The terms of a loaded program."""
        return cls(*(getattr(program, f) for f in cls.__slots__))

    @property
    def caps(self) -> Caps:
        """Its per-citizen caps, as every payment from it carries them to the ledger."""
        return Caps(self.cap_points_per_citizen, self.cap_grants_per_citizen)

    def running(self, now: datetime) -> bool:
        """Whether it pays at `now`: not paused, and within its start and end."""
        return (
            self.active
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


_TERMS = select(*(table(Program).c[f] for f in ProgramTerms.__slots__)).where(
    table(Program).c.id == bindparam("id")
)


_PG_TERMS = pg.psycopg_sql(
    f"SELECT {', '.join(ProgramTerms.__slots__)} FROM points_programs WHERE id = :id"  # noqa: S608
)


def program_terms(session: Session, program_id: int) -> ProgramTerms | None:
    """The program's terms, read now (never cached: staff may have just changed them)."""
    conn = session.connection()
    raw = pg.connection(conn)
    if raw is not None:
        row = raw.row(_PG_TERMS, {"id": program_id})
    else:
        row = conn.execute(_TERMS, {"id": program_id}).first()
    return None if row is None else ProgramTerms(*row)


def grantable(
    program: ProgramTerms | None, municipality_id: int | None = None, now: datetime | None = None
) -> ProgramTerms:
    """The program if staff may grant from it at `now`, else the reason why not."""
    if program is None or (
        municipality_id is not None and program.municipality_id != municipality_id
    ):
        raise NotFound(Code.UNKNOWN_PROGRAM)
    if program.category == ProgramCategory.PARTNER_BONUS:
        raise Refused(Code.NOT_ACCEPTED, "the partner bonus budget is not granted by staff")
    if not program.active:
        raise Refused(Code.INACTIVE)
    if not program.running(utc_now(now)):
        raise Refused(Code.NOT_RUNNING)
    return program


def grant_posting(
    program: ProgramTerms, citizen: str, key: str, digest: str, now: datetime
) -> Posting:
    """The ledger posting of one grant of `program` to `citizen` (shared with CSV grants)."""
    return Posting(
        kind=TransferKind.GRANT,
        debit=Acct(AccountKind.PROGRAM, program.municipality_id, id=program.account_id),
        credit=Acct(AccountKind.CITIZEN, program.municipality_id, mykey_id=citizen),
        amount=program.points_per_grant,
        key=key,
        payload_hash=digest,
        program_id=program.id,
        lot_expires_at=now + timedelta(days=program.expiry_days),
        caps=program.caps,
    )


def grant(
    session: Session,
    program_id: int,
    citizen: str,
    *,
    key: str,
    directory: CitizenDirectory,
    municipality_id: int | None = None,
    now: datetime | None = None,
) -> GrantResult:
    """Grant the program's points to one MyKey ID; a retry with `key` returns the first result.

    `municipality_id`, when given (the staff member's), must be the program's.
    """
    citizen = mykey_id(citizen)
    full_key = f"grant:{idempotency_key(key)}"
    digest = payload_hash({"op": "grant", "program": program_id, "mykey_id": citizen})
    now = utc_now(now)
    alone = grant_alone(
        session, program_id, citizen, full_key, digest, now, directory, municipality_id
    )
    if alone is not None:
        return GrantResult(
            alone.transfer_id, alone.program_code, citizen, alone.points, alone.expires_at,
            alone.balance,
        )  # fmt: skip

    def work() -> GrantResult:
        program = grantable(program_terms(session, program_id), municipality_id, now)
        if not directory.exists(session, citizen):
            raise NotFound(Code.UNKNOWN_CITIZEN)
        posting = grant_posting(program, citizen, full_key, digest, now)
        [w] = ledger.write(session, [posting], now)
        assert posting.lot_expires_at is not None  # noqa: S101  (set by grant_posting)
        return GrantResult(
            w.id, program.code, citizen, w.amount, posting.lot_expires_at, w.credit_balance
        )

    def replay() -> GrantResult | None:
        first = ledger.find(session, full_key)
        return None if first is None else _replayed(session, first, digest, citizen)

    return ledger.run(session, work, replay)


def _replayed(session: Session, first: Transfer, digest: str, citizen: str) -> GrantResult:
    ledger.check_replay(first, digest)
    lot = session.scalar(select(PointLot).where(PointLot.transfer_id == first.id))
    program = session.get(Program, first.program_id)
    assert lot is not None and program is not None  # noqa: S101  (written with the grant)
    return GrantResult(
        first.id, program.code, citizen, first.amount, lot.expires_at, first.credit_balance, True
    )


def revoke(
    session: Session,
    grant_id: int,
    *,
    key: str,
    points: int | None = None,
    municipality_id: int | None = None,
    now: datetime | None = None,
) -> Written:
    """Take back a grant made in error, as a reversal (取消): only points still unspent."""
    full_key = f"revoke:{idempotency_key(key)}"
    if points is not None:
        check_amount(points, "points", MAX_POINTS)
    # `points` None means "all of it": the request, not its outcome, is what a replay matches.
    digest = payload_hash({"op": "revoke", "grant": grant_id, "points": points})
    now = utc_now(now)

    def work() -> Written:
        original = session.get(Transfer, grant_id)
        if (
            original is None
            or original.kind != TransferKind.GRANT
            or (municipality_id is not None and original.municipality_id != municipality_id)
        ):
            raise NotFound(Code.UNKNOWN_TRANSFER)
        program = _program(session, original.program_id or 0)
        citizen = _owner(session, original.credit_account_id)
        if citizen is None:  # compacted: the program ended a refund window ago
            raise Refused(Code.NOT_REVERSIBLE, "the grant is past its retention")
        amount = original.amount if points is None else points
        posting = Posting(
            kind=TransferKind.GRANT_REVOKE,
            debit=Acct(
                AccountKind.CITIZEN,
                original.municipality_id,
                id=original.credit_account_id,
                mykey_id=citizen,
            ),
            credit=Acct(AccountKind.PROGRAM, original.municipality_id, id=program.account_id),
            amount=amount,
            key=full_key,
            payload_hash=digest,
            reversal_of=original.id,
            program_id=program.id,
        )
        return ledger.write(session, [posting], now)[0]

    def replay() -> Written | None:
        first = ledger.find(session, full_key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        return ledger.as_written(first)

    return ledger.run(session, work, replay)


def _owner(session: Session, account_id: int) -> str | None:
    """The MyKey ID of a citizen account; None for any other (a compaction pool)."""
    from .models import Account

    account = session.get(Account, account_id)
    assert account is not None  # noqa: S101  (a foreign key)
    return account.owner if account.kind == AccountKind.CITIZEN.value else None
