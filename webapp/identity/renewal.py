"""A renewed or replaced card keeps its MyKey ID: the binding moves from card to card.

A certificate renewal (更新) or a lost card's replacement (再発行) gives a new serial,
so a new card key. J-LIS's old-to-new linkage (webapp/jpki/linkage.py) says which card
key follows which; `rebind` moves the bindings so that the next tap of the new card opens
the same MyKey ID, with every link and every point.

Rules:
- One file, one transaction: every move of it lands, or none (a database error, or a
  race with a tap that bound the new card meanwhile, rolls it all back; run it again).
- Idempotent: a pair already moved, or whose old card was never bound here, changes
  nothing.
- Never a merge of two MyKey IDs that both hold something (links or points): such a pair
  is left as it is and reported for staff (`RebindConflict`, no card data in it). When
  one of the two holds nothing (the citizen tapped the new card before the import and got
  an empty MyKey ID), the empty one goes and the other is kept.
- Nothing about the renewal is kept: no serial, no date, only the binding itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from .models import CARD_KEY_LENGTH, CardBinding, MyKeyID, RebindConflict, ServiceLink


@dataclass(frozen=True)
class Move:
    """The card `old_key` is followed by the card `new_key` (keyed hashes, 32 bytes)."""

    old_key: bytes
    new_key: bytes
    new_not_after: datetime

    def __post_init__(self) -> None:
        for key in (self.old_key, self.new_key):
            if not isinstance(key, bytes) or len(key) != CARD_KEY_LENGTH:
                raise ValueError(f"a card key is {CARD_KEY_LENGTH} bytes")
        if self.new_not_after.tzinfo is None:
            raise ValueError("the new certificate's end needs a time zone")


@dataclass
class RebindReport:
    """What one import did (counts only, and the conflicting pairs of MyKey IDs)."""

    moved: int = 0  # bindings moved to the new card
    already: int = 0  # moved by an earlier import
    unknown: int = 0  # the old card was never bound here
    conflicts: list[tuple[str, str]] = field(default_factory=list)


def holds_anything(s: Session, mykey_id: str) -> bool:
    """Whether anything hangs on this MyKey ID besides its card: a link or a points
    account that has seen a transfer (an account opened and never used holds nothing)."""
    from ..points.models import Account, AccountKind, Transfer  # identity < points

    if s.scalar(select(exists().where(ServiceLink.mykey_id == mykey_id))):
        return True
    accounts = select(Account.id).where(
        Account.owner == mykey_id, Account.kind == AccountKind.CITIZEN.value
    )
    used = exists().where(
        (Transfer.debit_account_id.in_(accounts)) | (Transfer.credit_account_id.in_(accounts))
    )
    return bool(s.scalar(select(used)))


def move_points_accounts(s: Session, old_id: str, new_id: str) -> None:
    """Citizen points accounts follow a MyKey ID to its new value (a re-roll)."""
    from ..points.models import Account, AccountKind

    s.execute(
        update(Account)
        .where(Account.owner == old_id, Account.kind == AccountKind.CITIZEN.value)
        .values(owner=new_id)
    )


def _drop_empty(s: Session, mykey_id: str) -> None:
    """Remove a MyKey ID that holds nothing, with its unused points accounts."""
    from ..points.models import Account, AccountKind

    s.execute(
        delete(Account).where(Account.owner == mykey_id, Account.kind == AccountKind.CITIZEN.value)
    )
    s.execute(delete(CardBinding).where(CardBinding.mykey_id == mykey_id))
    s.execute(delete(MyKeyID).where(MyKeyID.id == mykey_id))


def _conflict(s: Session, report: RebindReport, old_id: str, new_id: str) -> None:
    report.conflicts.append((old_id, new_id))
    known = select(RebindConflict.id).where(
        RebindConflict.old_mykey_id == old_id, RebindConflict.new_mykey_id == new_id
    )
    if s.scalar(known) is None:
        s.add(RebindConflict(old_mykey_id=old_id, new_mykey_id=new_id))
        s.flush()


def _move_one(s: Session, move: Move, report: RebindReport, at: datetime) -> None:
    old = s.get(CardBinding, move.old_key)
    new = s.get(CardBinding, move.new_key)
    if old is None:
        if new is None:
            report.unknown += 1
        else:
            report.already += 1
        return
    kept = old.mykey_id
    if new is not None and new.mykey_id != kept:
        if holds_anything(s, new.mykey_id):
            if holds_anything(s, kept):
                _conflict(s, report, kept, new.mykey_id)
                return
            # The old MyKey ID held nothing: the new card keeps its own.
            s.delete(old)
            s.flush()
            _drop_empty(s, kept)
            report.moved += 1
            return
        _drop_empty(s, new.mykey_id)  # the empty ID made by an early tap of the new card
        new = None
    s.delete(old)
    s.flush()
    if new is None:
        s.add(
            CardBinding(
                card_key=move.new_key,
                mykey_id=kept,
                cert_not_after=move.new_not_after,
                created_at=at,
            )
        )
        s.flush()
    report.moved += 1


def rebind(s: Session, moves: Iterable[Move], *, now: datetime | None = None) -> RebindReport:
    """Apply every move in order (a chain a -> b -> c ends on c), in one transaction."""
    at = now or datetime.now(UTC)
    report = RebindReport()
    try:
        for move in moves:
            _move_one(s, move, report, at)
        s.commit()
    except BaseException:
        s.rollback()
        raise
    return report
