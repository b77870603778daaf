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
class Caps:
    """A program's per-citizen caps (None: no such cap), read with its terms in the
    transaction that pays; `Caps()` says the program has none."""

    points: int | None = None
    grants: int | None = None

    @property
    def any(self) -> bool:
        """Whether there is a cap to count against."""
        return self.points is not None or self.grants is not None

    def room(self, points: int, grants: int) -> int | None:
        """Points a citizen who has `points` from `grants` payments may still get (None:
        no limit); 0 once the count of payments is reached."""
        if self.grants is not None and grants >= self.grants:
            return 0
        return None if self.points is None else max(0, self.points - points)


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
    # The per-citizen caps of `program_id`: required when a program pays a citizen (a
    # grant, a conversion bonus), so that no path can pay past them by leaving them out.
    caps: Caps | None = None

    @property
    def pays_from_program(self) -> bool:
        """A program paying a citizen, held or posted (not the resolution of a hold)."""
        return (
            self.debit.kind is AccountKind.PROGRAM
            and self.credit.kind is AccountKind.CITIZEN
            and self.pending_id is None
        )


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
        if p.pays_from_program and (p.program_id is None or p.caps is None):
            raise ValueError(f"a payment from a program names it and its caps: {p.key}")
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
