"""Donations and crowdfunding (社会貢献・クラウドファンディング), without a till.

A municipality lists causes (donations taken while open) and crowdfunding projects (a goal
in points and an end). Each has its own account (kind `merchant`, owner `cause:<code>`):
what the municipality owes the cause. A citizen gives from the kiosk or at home, after
the card and the PIN (the kiosk purpose's `give_prepare` / `give_confirm` steps): one
`donation` transfer, citizen to cause, taken from the citizen's lots soonest expiry first
like a spend, idempotent on a key the card flow keeps on the server.

After a project's end `settle_projects` (`flask points settle-projects`) settles it: goal
met, or missed. A missed project's points are kept or returned, as the municipality chose
for it: a return is one `donation_return` per donation, a reversal the ledger caps at the
donation, given back into the very lots the donation took from with their own expiry; a
lot already past its expiry gives its part back in a fresh lot of the project's
`fresh_days`. Keys name the donation (`donation-return:<id>`), so a killed run re-run
returns nothing twice, and a later run also returns a donation that committed after the
first run's scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from . import ledger
from .errors import Code, InvalidInput, NotFound, Refused
from .ledger import Acct, Posting
from .models import (
    Account,
    AccountKind,
    Cause,
    CauseKind,
    CauseStatus,
    MissPolicy,
    Municipality,
    Transfer,
    TransferKind,
)
from .spend import spendable
from .validation import amount as check_amount
from .validation import idempotency_key, mykey_id, payload_hash, utc_now

# The most points one donation takes (a sanity bound on what a citizen types).
MAX_DONATION = 10_000_000
CAUSES_SHOWN = 200


@dataclass(frozen=True, slots=True)
class CauseView:
    """A cause or project as a citizen picks it (amounts only, never who gave)."""

    id: int
    municipality_id: int
    municipality: str
    code: str
    name: str
    description: str
    kind: str
    goal_points: int | None
    raised: int
    ends_at: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class DonationReceipt:
    """What the citizen is shown: the cause, points given, balance left, when."""

    transfer_id: int
    cause: str
    kind: str
    points: int
    balance: int
    created_at: datetime
    replayed: bool = False


def cause_owner(code: str) -> str:
    """The account owner of a cause (unique per municipality like the cause's code)."""
    return f"cause:{code}"


def raised(cause: Cause, session: Session) -> int:
    """Points on the cause's account: donations less returns."""
    account = session.get(Account, cause.account_id)
    return 0 if account is None else int(account.balance)


def accepting(cause: Cause, now: datetime) -> bool:
    """Whether the cause takes a donation now (open, and a project before its end)."""
    if cause.status != CauseStatus.OPEN:
        return False
    return cause.ends_at is None or now < cause.ends_at


def _view(cause: Cause, muni: Municipality, balance: int) -> CauseView:
    return CauseView(
        cause.id,
        cause.municipality_id,
        muni.name,
        cause.code,
        cause.name,
        cause.description,
        cause.kind,
        cause.goal_points,
        balance,
        cause.ends_at,
        cause.status,
    )


def open_causes(
    session: Session, municipality_ids: list[int], now: datetime | None = None
) -> list[CauseView]:
    """The causes and projects taking donations now in these municipalities."""
    now = utc_now(now)
    if not municipality_ids:
        return []
    rows = session.execute(
        select(Cause, Municipality, Account.balance)
        .join(Municipality, Municipality.id == Cause.municipality_id)
        .join(Account, Account.id == Cause.account_id)
        .where(
            Cause.municipality_id.in_(municipality_ids),
            Cause.status == CauseStatus.OPEN.value,
            (Cause.ends_at.is_(None)) | (Cause.ends_at > now),
        )
        .order_by(Municipality.code, Cause.kind, Cause.id)
        .limit(CAUSES_SHOWN)
    ).all()
    return [_view(c, m, int(b)) for c, m, b in rows]


def citizen_municipalities(session: Session, citizen: str) -> list[int]:
    """The municipalities where the citizen has points (an account)."""
    return list(
        session.scalars(
            select(Account.municipality_id).where(
                Account.owner == citizen, Account.kind == AccountKind.CITIZEN.value
            )
        )
    )


def get_cause(session: Session, cause_id: object) -> Cause:
    """The cause by id, or NotFound."""
    valid = isinstance(cause_id, int) and not isinstance(cause_id, bool)
    cause = session.get(Cause, cause_id) if valid else None
    if cause is None:
        raise NotFound(Code.UNKNOWN_CAUSE)
    return cause


def check_donation(
    session: Session, cause_id: object, citizen: str, points: object, now: datetime | None = None
) -> tuple[Cause, int]:
    """The cause and amount of a donation the citizen may make now (nothing written)."""
    now = utc_now(now)
    cause = get_cause(session, cause_id)
    amount = check_amount(points, "points")
    if amount > MAX_DONATION:
        raise InvalidInput(Code.INVALID_AMOUNT)
    if not accepting(cause, now):
        raise Refused(Code.CAUSE_CLOSED)
    if spendable(session, cause.municipality_id, citizen, now) < amount:
        raise Refused(Code.INSUFFICIENT_POINTS)
    return cause, amount


def donate(
    session: Session,
    cause_id: int,
    citizen: str,
    points: object,
    *,
    key: str,
    now: datetime | None = None,
) -> DonationReceipt:
    """Give `points` from the citizen to the cause, soonest-expiring lots first."""
    amount = check_amount(points, "points")
    citizen = mykey_id(citizen)
    full_key = f"donate:{cause_id}:{idempotency_key(key)}"
    digest = payload_hash(
        {"op": "donate", "cause": cause_id, "mykey_id": citizen, "points": amount}
    )
    now = utc_now(now)

    def work() -> DonationReceipt:
        cause = get_cause(session, cause_id)
        if not accepting(cause, now):
            raise Refused(Code.CAUSE_CLOSED)
        posting = Posting(
            kind=TransferKind.DONATION,
            debit=Acct(AccountKind.CITIZEN, cause.municipality_id, mykey_id=citizen),
            credit=Acct(AccountKind.MERCHANT, cause.municipality_id, id=cause.account_id),
            amount=amount,
            key=full_key,
            payload_hash=digest,
        )
        [w] = ledger.write(session, [posting], now)
        return DonationReceipt(w.id, cause.name, cause.kind, amount, w.debit_balance or 0, now)

    def replay() -> DonationReceipt | None:
        first = ledger.find(session, full_key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        cause = get_cause(session, cause_id)
        return DonationReceipt(
            first.id,
            cause.name,
            cause.kind,
            first.amount,
            first.debit_balance or 0,
            first.created_at,
            True,
        )

    return ledger.run(session, work, replay)


# -- settling projects after their end ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settled:
    """One project settled (or re-checked): its outcome and what was returned now."""

    cause_id: int
    code: str
    status: str
    raised: int
    returned: int
    returns: int


def _unreturned(session: Session, cause: Cause) -> list[tuple[int, int, int, str]]:
    """(donation id, amount, citizen account id, MyKey ID) of donations to the project not
    yet returned."""
    back = aliased(Transfer)
    rows = session.execute(
        select(Transfer.id, Transfer.amount, Account.id, Account.owner)
        .join(Account, Account.id == Transfer.debit_account_id)
        .outerjoin(back, back.reversal_of == Transfer.id)
        .where(
            Transfer.credit_account_id == cause.account_id,
            Transfer.kind == TransferKind.DONATION.value,
            back.id.is_(None),
        )
        .order_by(Transfer.id)
    ).all()
    return [(int(t), int(a), int(acct), str(owner)) for t, a, acct, owner in rows]


def return_donation(
    session: Session,
    cause: Cause,
    donation: tuple[int, int, int, str],
    now: datetime,
) -> bool:
    """Reverse one donation into the lots it came from (True: written now, False: a
    replay of an earlier run)."""
    transfer_id, amount, account_id, owner = donation
    key = f"donation-return:{transfer_id}"
    digest = payload_hash({"op": "donation_return", "donation": transfer_id, "points": amount})
    fresh = now + timedelta(days=cause.fresh_days)
    muni = cause.municipality_id

    def work() -> bool:
        posting = Posting(
            kind=TransferKind.DONATION_RETURN,
            debit=Acct(AccountKind.MERCHANT, muni, id=cause.account_id),
            credit=Acct(AccountKind.CITIZEN, muni, id=account_id, mykey_id=owner),
            amount=amount,
            key=key,
            payload_hash=digest,
            reversal_of=transfer_id,
            lot_expires_at=fresh,
        )
        ledger.write(session, [posting], now)
        return True

    def replay() -> bool | None:
        first = ledger.find(session, key)
        if first is None:
            return None
        ledger.check_replay(first, digest)
        return False

    return ledger.run(session, work, replay)


_SETTLING = (CauseStatus.OPEN, CauseStatus.CLOSED, CauseStatus.MISSED_RETURNED)


def settle_projects(session: Session, now: datetime | None = None) -> list[Settled]:
    """Settle every project past its end: met, missed and kept, or missed and returned.

    Projects already returned are looked at again: a donation that committed after an
    earlier run's scan is returned too. Each return is its own transaction, keyed by the
    donation; the project's status is written once all of its returns are.
    """
    now = utc_now(now)
    due = list(
        session.scalars(
            select(Cause)
            .where(
                Cause.kind == CauseKind.PROJECT.value,
                Cause.ends_at <= now,
                # A project closed early by its officer is settled at its end too.
                Cause.status.in_([s.value for s in _SETTLING]),
            )
            .order_by(Cause.id)
        )
    )
    session.rollback()  # end the read: each return is its own unit of work
    out = []
    for cause in due:
        cause = session.get(Cause, cause.id)
        assert cause is not None  # noqa: S101  (never deleted)
        goal = cause.goal_points or 0
        total = _given(session, cause)
        unsettled = cause.status in (CauseStatus.OPEN, CauseStatus.CLOSED)
        if unsettled and total >= goal:
            status = CauseStatus.MET
        elif unsettled and cause.miss_policy == MissPolicy.KEEP:
            status = CauseStatus.MISSED_KEPT
        else:
            status = CauseStatus.MISSED_RETURNED
        returned = returns = 0
        if status is CauseStatus.MISSED_RETURNED:
            pending = _unreturned(session, cause)
            session.rollback()
            for donation in pending:
                if return_donation(session, cause, donation, now):
                    returned += donation[1]
                    returns += 1
            cause = session.get(Cause, cause.id)
            assert cause is not None  # noqa: S101
        if cause.status != status.value:
            cause.status = status.value
            cause.settled_at = now
        session.commit()
        out.append(Settled(cause.id, cause.code, status.value, total, returned, returns))
    return out


def _given(session: Session, cause: Cause) -> int:
    """Everything ever given to the cause (returns not deducted): what met the goal."""
    total = session.scalar(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.credit_account_id == cause.account_id,
            Transfer.kind == TransferKind.DONATION.value,
        )
    )
    return int(total or 0)
