"""What a batch of the ledger says: postings, the accounts they touch, and their effects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import Code, InvalidInput
from ..models import AccountKind, TransferKind, TransferStatus

# Lock classes: per-person rows first, shared system rows last (see the module doc).
RANK = {
    AccountKind.CITIZEN: (0, 0),
    AccountKind.MERCHANT: (0, 1),
    AccountKind.PARTNER: (1, 0),
    AccountKind.PROGRAM: (1, 1),
    AccountKind.EXPIRED: (1, 2),
    AccountKind.ISSUANCE: (1, 3),
}


@dataclass(frozen=True, slots=True)
class Acct:
    """An account in a posting: citizens by MyKey ID (id optional), the others by id."""

    kind: AccountKind
    municipality_id: int
    id: int | None = None
    mykey_id: str = ""

    def lock_key(self) -> tuple[int, int, int, str, int]:
        """The account's place in the one global lock order."""
        cls, rank = RANK[self.kind]
        return (cls, rank, self.municipality_id, self.mykey_id, self.id or 0)


@dataclass(frozen=True, slots=True)
class Posting:
    """One transfer to write. `status` PENDING reserves; POSTED/VOIDED with `pending_id`
    resolve a pending transfer; `lot_expires_at` is required when a citizen is credited."""

    kind: TransferKind
    debit: Acct
    credit: Acct
    amount: int
    key: str
    payload_hash: str
    status: TransferStatus = TransferStatus.POSTED
    pending_id: int | None = None
    reversal_of: int | None = None
    program_id: int | None = None
    hold_until: datetime | None = None
    lot_expires_at: datetime | None = None
    cap_points: int | None = None  # per-citizen caps of program_id, when it has them
    cap_grants: int | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """A transfer as written (or as first written, on a replay)."""

    id: int
    kind: str
    status: str
    amount: int
    debit_account_id: int
    credit_account_id: int
    debit_balance: int | None
    credit_balance: int | None
    created_at: datetime


@dataclass(slots=True)
class Effect:
    balance: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    debited: bool = False
    revoked: bool = False  # debited by a grant revoke: say "already used", not "too few"
    row: dict[str, Any] = field(default_factory=dict)


class DuplicateKey(Exception):
    """The idempotency key is taken: a concurrent or earlier request with the same key."""


def effects_of(postings: Sequence[Posting]) -> dict[Acct, Effect]:
    effects: dict[Acct, Effect] = {}
    for p in postings:
        if p.debit == p.credit:
            raise InvalidInput(Code.INVALID_INPUT, "debit and credit are the same account")
        if p.debit.municipality_id != p.credit.municipality_id:
            raise InvalidInput(Code.INVALID_INPUT, "a transfer stays within one municipality")
        for acct in (p.debit, p.credit):
            if (acct.kind is AccountKind.CITIZEN) != bool(acct.mykey_id) or (
                acct.kind is not AccountKind.CITIZEN and acct.id is None
            ):
                raise ValueError(f"citizens go by MyKey ID, other accounts by id: {acct}")
        d = effects.setdefault(p.debit, Effect())
        c = effects.setdefault(p.credit, Effect())
        d.debited = True
        d.revoked |= p.kind is TransferKind.GRANT_REVOKE
        a = p.amount
        if p.status is TransferStatus.PENDING:
            d.debits_pending += a
            c.credits_pending += a
        elif p.status is TransferStatus.VOIDED:
            d.debits_pending -= a
            c.credits_pending -= a
        else:
            d.balance -= a
            c.balance += a
            if p.pending_id is not None:
                d.debits_pending -= a
                c.credits_pending -= a
    return effects
