"""Partner conversion (地域経済応援ポイント): partner points into a municipality's points.

N partner points become floor(N * rate) base points, charged to the partner's account,
plus floor(base * bonus) bonus points, charged to the municipality's bonus budget. N must
be a positive multiple of the municipality's minimum unit. Both transfers are held
(pending) for the holding period, then posted by `post_due`, or voided by the partner's
cancel while still held. One-way: converted points never go back to the partner.

The bonus is a payment from a program like any grant, so the bonus program's caps hold:
it is paid only up to what the citizen's per-citizen caps, the budget and the program
being active allow (possibly nothing), and the conversion itself always goes through.
The answer says both: `bonus_asked` (what the terms give) and `bonus_points` (paid).
A held bonus takes its cap room when held; a cancel gives it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from . import ledger
from .admin import municipality_by_code
from .directory import CitizenDirectory
from .errors import Code, Conflict, Forbidden, NotFound, PointsError, Refused
from .ledger import Acct, Posting, Written
from .models import (
    Account,
    AccountKind,
    Conversion,
    ConversionTerms,
    Municipality,
    OpenHold,
    Partner,
    Program,
    Transfer,
    TransferKind,
    TransferStatus,
    table,
)
from .programs import program_terms
from .validation import amount as check_amount
from .validation import mykey_id, payload_hash, reference, utc_now

MAX_PARTNER_POINTS = 10**10  # per request; far above any real balance
# A bonus is sized on the budget read without a lock (the budget's row is the hottest and
# is locked last, with the COMMIT); should the budget have moved by then, the conversion
# is sized again, and after this many tries goes through without a bonus.
BUDGET_TRIES = 4


@dataclass(frozen=True, slots=True)
class ConversionResult:
    """A conversion as the partner sees it."""

    reference: str
    municipality: str
    mykey_id: str
    partner_points: int
    base_points: int
    bonus_points: int  # paid: at most bonus_asked, less where a cap or the budget stops it
    bonus_asked: int  # what the terms give: floor(base * bonus_bp / 10,000)
    status: str  # pending, posted or voided
    hold_until: datetime
    created_at: datetime
    replayed: bool = False

    @property
    def points(self) -> int:
        """All points the citizen gets: base plus bonus."""
        return self.base_points + self.bonus_points


def quote(terms: ConversionTerms, partner_points: int) -> tuple[int, int]:
    """(base, bonus) for `partner_points` under `terms`, both rounded down (切り捨て)."""
    if partner_points <= 0 or partner_points % terms.min_unit:
        raise Refused(Code.BELOW_MINIMUM_UNIT, f"unit {terms.min_unit}")
    base = partner_points * terms.rate_num // terms.rate_den
    if base <= 0:
        raise Refused(Code.BELOW_MINIMUM_UNIT, "converts to 0 points")
    return base, base * terms.bonus_bp // 10_000


def _key(partner: Partner, ref: str) -> str:
    return f"conv:{partner.id}:{ref}"


def convert(
    session: Session,
    partner: Partner,
    *,
    municipality_code: str,
    citizen: str,
    partner_points: object,
    ref: str,
    directory: CitizenDirectory,
    now: datetime | None = None,
) -> ConversionResult:
    """Convert a MyKey ID holder's partner points; idempotent on the partner's `ref`."""
    points = check_amount(partner_points, "partner_points", MAX_PARTNER_POINTS)
    citizen = mykey_id(citizen)
    ref = reference(ref)
    now = utc_now(now)
    key = _key(partner, ref)
    digest = payload_hash(
        {"op": "convert", "municipality": municipality_code, "mykey_id": citizen, "points": points}
    )

    def work(bonus_allowed: bool) -> ConversionResult:
        if not partner.active:
            raise Forbidden(Code.INACTIVE)
        muni = municipality_by_code(session, municipality_code)
        terms = session.scalar(
            select(ConversionTerms).where(
                ConversionTerms.municipality_id == muni.id,
                ConversionTerms.partner_id == partner.id,
                ConversionTerms.active.is_(True),
            )
        )
        if terms is None:
            raise Forbidden(Code.NOT_ACCEPTED, "this municipality does not take your points")
        base, asked = quote(terms, points)
        if not directory.exists(session, citizen):
            raise NotFound(Code.UNKNOWN_CITIZEN)
        hold_until = now + timedelta(days=terms.hold_days)
        held = terms.hold_days > 0  # no holding period: posted at once
        status = TransferStatus.PENDING if held else TransferStatus.POSTED
        to_citizen = Acct(AccountKind.CITIZEN, muni.id, mykey_id=citizen)
        postings = [
            Posting(
                kind=TransferKind.CONVERSION,
                debit=Acct(AccountKind.PARTNER, muni.id, id=terms.partner_account_id),
                credit=to_citizen,
                amount=base,
                key=key,
                payload_hash=digest,
                status=status,
                hold_until=hold_until if held else None,
                lot_expires_at=None if held else now + timedelta(days=terms.expiry_days),
            )
        ]
        bonus = _bonus(session, terms, postings[0], asked, now) if bonus_allowed else None
        if bonus is not None:
            postings.append(bonus)

        def record(written: list[Written]) -> None:
            session.connection().execute(
                insert(table(Conversion)),
                {
                    "partner_id": partner.id,
                    "reference": ref,
                    "municipality_id": muni.id,
                    "citizen_account_id": written[0].credit_account_id,
                    "partner_points": points,
                    "base_points": base,
                    "bonus_points": asked,  # as requested; what was paid is its transfer
                    "base_transfer_id": written[0].id,
                    "bonus_transfer_id": written[1].id if bonus is not None else None,
                    "hold_until": hold_until,
                    "created_at": now,
                },
            )

        ledger.write(session, postings, now, on_written=record)
        paid = 0 if bonus is None else bonus.amount
        return ConversionResult(
            ref, muni.code, citizen, points, base, paid, asked, status.value, hold_until, now
        )

    def replay() -> ConversionResult | None:
        first = ledger.find(session, key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        return _result(session, partner, ref, replayed=True)

    for attempt in range(BUDGET_TRIES):
        last = attempt == BUDGET_TRIES - 1
        try:
            return ledger.run(session, partial(work, not last), replay)
        except Refused as exc:
            if exc.code is not Code.BUDGET_EXHAUSTED or last:
                raise
    raise AssertionError("unreachable")  # pragma: no cover  (the last try pays no bonus)


def _bonus(
    session: Session, terms: ConversionTerms, base: Posting, asked: int, now: datetime
) -> Posting | None:
    """The bonus of the conversion whose base is `base`: the part of `asked` the bonus
    program pays now, or None for nothing. Nothing while the program is paused, and no
    more than the citizen's caps (read under the citizen's row lock, which the conversion
    keeps to its end) and the budget leave."""
    if not asked:
        return None
    program = program_terms(session, terms.bonus_program_id or 0)
    assert program is not None  # noqa: S101  (set_terms requires it with a bonus)
    if not program.running(now):  # paused, not started or ended: no bonus
        return None
    room = ledger.room(session, base.credit, program.id, program.caps, now)
    left = ledger.available(session, program.account_id)
    amount = min(asked, left, asked if room is None else room)
    if amount <= 0:
        return None
    held = base.status is TransferStatus.PENDING
    return Posting(
        kind=TransferKind.CONVERSION_BONUS,
        debit=Acct(AccountKind.PROGRAM, program.municipality_id, id=program.account_id),
        credit=base.credit,
        amount=amount,
        key=f"{base.key}/bonus",
        payload_hash=base.payload_hash,
        status=base.status,
        program_id=program.id,
        hold_until=base.hold_until,
        lot_expires_at=None if held else now + timedelta(days=program.expiry_days),
        caps=program.caps,
    )


def _conversion(session: Session, partner: Partner, ref: str) -> Conversion:
    conv = session.scalar(
        select(Conversion).where(Conversion.partner_id == partner.id, Conversion.reference == ref)
    )
    if conv is None:
        raise NotFound(Code.UNKNOWN_CONVERSION)
    return conv


def _result(
    session: Session, partner: Partner, ref: str, *, replayed: bool = False
) -> ConversionResult:
    conv = _conversion(session, partner, ref)
    base = session.get(Transfer, conv.base_transfer_id)
    assert base is not None  # noqa: S101  (a foreign key)
    status = base.status
    if status == TransferStatus.PENDING:
        resolution = session.scalar(
            select(Transfer.status).where(Transfer.pending_id == conv.base_transfer_id)
        )
        status = resolution or TransferStatus.PENDING
    muni = session.get(Municipality, conv.municipality_id)
    account = session.get(Account, conv.citizen_account_id)
    assert muni is not None and account is not None  # noqa: S101  (foreign keys)
    paid = 0
    if conv.bonus_transfer_id is not None:
        bonus = session.get(Transfer, conv.bonus_transfer_id)
        assert bonus is not None  # noqa: S101  (a foreign key)
        paid = bonus.amount
    return ConversionResult(
        ref,
        muni.code,
        account.owner,
        conv.partner_points,
        conv.base_points,
        paid,
        conv.bonus_points,
        str(status),
        conv.hold_until,
        conv.created_at,
        replayed,
    )


def status(session: Session, partner: Partner, ref: str) -> ConversionResult:
    """A conversion of this partner by its reference (a partner sees only its own)."""
    return _result(session, partner, reference(ref))


def _resolve(
    session: Session, conv: Conversion, how: TransferStatus, now: datetime
) -> list[Written]:
    """Post or void both held transfers of a conversion in one transaction."""
    suffix = "post" if how is TransferStatus.POSTED else "void"
    postings: list[Posting] = []
    for transfer_id in (conv.base_transfer_id, conv.bonus_transfer_id):
        if transfer_id is None:
            continue
        held = session.get(Transfer, transfer_id)
        assert held is not None  # noqa: S101  (a foreign key)
        debit = session.get(Account, held.debit_account_id)
        credit = session.get(Account, held.credit_account_id)
        assert debit is not None and credit is not None  # noqa: S101
        expires = None
        if how is TransferStatus.POSTED:
            expires = now + timedelta(days=_expiry_days(session, conv, held))
        postings.append(
            Posting(
                kind=TransferKind(held.kind),
                debit=Acct(AccountKind(debit.kind), debit.municipality_id, id=debit.id),
                credit=Acct(
                    AccountKind.CITIZEN, credit.municipality_id, id=credit.id, mykey_id=credit.owner
                ),
                amount=held.amount,
                key=f"{held.idempotency_key}/{suffix}",
                payload_hash=payload_hash({"op": suffix, "transfer": held.id}),
                status=how,
                pending_id=held.id,
                program_id=held.program_id,
                lot_expires_at=expires,
            )
        )
    return ledger.write(session, postings, now)


def _expiry_days(session: Session, conv: Conversion, held: Transfer) -> int:
    if held.program_id is not None:
        program = session.get(Program, held.program_id)
        assert program is not None  # noqa: S101
        return program.expiry_days
    terms = session.scalar(
        select(ConversionTerms).where(
            ConversionTerms.municipality_id == conv.municipality_id,
            ConversionTerms.partner_id == conv.partner_id,
        )
    )
    assert terms is not None  # noqa: S101  (a conversion needs terms)
    return terms.expiry_days


def cancel(
    session: Session, partner: Partner, ref: str, *, now: datetime | None = None
) -> ConversionResult:
    """Void a conversion still in its holding period (the partner's cancel)."""
    ref = reference(ref)
    now = utc_now(now)
    void_key = f"{_key(partner, ref)}/void"

    def work() -> ConversionResult:
        conv = _conversion(session, partner, ref)
        _resolve(session, conv, TransferStatus.VOIDED, now)
        return _result(session, partner, ref)

    def replay() -> ConversionResult | None:
        if ledger.find(session, void_key) is None:
            return None
        return _result(session, partner, ref, replayed=True)

    return ledger.run(session, work, replay)


def post_due(session: Session, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Post conversions whose holding period is over; returns how many were posted."""
    now = utc_now(now)
    due = ledger.read(
        session,
        lambda: list(
            session.scalars(
                select(Conversion.id)
                .join(OpenHold, OpenHold.transfer_id == Conversion.base_transfer_id)
                .where(OpenHold.hold_until <= now)
                .order_by(OpenHold.hold_until)
                .limit(limit)
            )
        ),
    )
    posted = 0
    for conv_id in due:

        def work(conv_id: int = conv_id) -> bool:
            conv = session.get(Conversion, conv_id)
            assert conv is not None  # noqa: S101
            _resolve(session, conv, TransferStatus.POSTED, now)
            return True

        try:
            posted += ledger.run(session, work, lambda: None)
        except PointsError as exc:
            if not (isinstance(exc, Conflict) and exc.code is Code.ALREADY_RESOLVED):
                raise
    return posted
