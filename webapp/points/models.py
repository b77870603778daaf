"""Points tables: municipalities, accounts, transfers, lots, programs, partners, merchants.

The ledger follows TigerBeetle's model on SQL: accounts hold balances, transfers move a
positive integer amount (1 point = 1 yen) from a debit account to a credit account and
are never deleted, and never updated but once: past the refund window,
webapp.points.retention re-points a payment's citizen side to an anonymous pool and adds
its amount to the citizen's monthly summary transfer (balances unchanged). Apart from
that, only webapp.points.ledger writes accounts, transfers, lots and holds; everything
else calls it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid); BIGINT would not.
BigId = BigInteger().with_variant(Integer(), "sqlite")

MAX_POINTS = 10**12  # bound on one amount: a trillion yen; sums stay far inside BIGINT
MYKEY_ID_MAX = 32
CODE_MAX = 32


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: timestamptz on PostgreSQL, naive UTC text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the points ledger; use UTC-aware times")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store one format, without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101  (the driver's contract)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class AccountKind(StrEnum):
    """What an account stands for; `owner` says whose it is within the municipality."""

    ISSUANCE = "issuance"  # the city's source of points; its -balance is what it put out
    PROGRAM = "program"  # a grant program's budget (never negative)
    PARTNER = "partner"  # a partner company; negative = what it owes the city in yen
    CITIZEN = "citizen"  # one per MyKey ID (never negative)
    MERCHANT = "merchant"  # what the city owes the merchant
    EXPIRED = "expired"  # sink of expired points
    # Anonymous pool of compacted history (webapp.points.retention): one per municipality,
    # JST month and category, owner "pool:YYYY-MM:<category>"; its balance is always 0.
    POOL = "pool"


# Accounts that may never go below zero (available = balance - debits_pending).
BOUNDED_KINDS = frozenset({AccountKind.CITIZEN, AccountKind.PROGRAM})


class TransferKind(StrEnum):
    """Why points moved."""

    FUNDING = "funding"  # issuance -> program budget
    GRANT = "grant"  # program -> citizen
    GRANT_REVOKE = "grant_revoke"  # citizen -> program, reversal of a grant
    CONVERSION = "conversion"  # partner -> citizen (地域経済応援ポイント), held first
    CONVERSION_BONUS = "conversion_bonus"  # program -> citizen, the city's bonus, held
    SPEND = "spend"  # citizen -> merchant
    REFUND = "refund"  # merchant -> citizen, reversal of a spend
    EXPIRY = "expiry"  # citizen -> expired sink
    DONATION = "donation"  # citizen -> a cause or project (寄付・クラウドファンディング)
    DONATION_RETURN = "donation_return"  # cause -> citizen, reversal of a donation (goal missed)
    # A citizen's monthly total with a pool, written by compaction (webapp.points.retention)
    # in place of the citizen's side of spends, refunds, donations and grants.
    SUMMARY = "summary"


class TransferStatus(StrEnum):
    """Posted moves balances; pending reserves; voided releases a pending transfer."""

    POSTED = "posted"
    PENDING = "pending"
    VOIDED = "voided"


class ProgramCategory(StrEnum):
    """Grant programs a municipality runs (自治体ポイント), plus the partner bonus budget."""

    VOLUNTEERING = "volunteering"  # ボランティア
    CARE_SUPPORT = "care_support"  # 介護支援
    CHILD_REARING = "child_rearing"  # 子育て支援
    HEALTH_CHECKUP = "health_checkup"  # 健康診断
    EVENT = "event"  # イベント参加
    MOVING_IN = "moving_in"  # 転入
    LONG_LIFE = "long_life"  # 長寿 (敬老)
    LIFELONG_LEARNING = "lifelong_learning"  # 生涯学習
    OTHER = "other"
    PARTNER_BONUS = "partner_bonus"  # the bonus on 地域経済応援ポイント; not staff-grantable


class MerchantCategory(StrEnum):
    """Where points may be used, as each municipality decides (使途は自治体が定める)."""

    MUSEUM = "museum"  # 美術館・博物館等の公共施設
    SHOP = "shop"  # 地域商店街等の商店・飲食店
    TRANSPORT = "transport"  # バス等の公共交通機関
    TOURISM = "tourism"  # 観光 (アンテナショップを含む)
    DONATION = "donation"  # 社会貢献 (災害復興支援等)
    CROWDFUNDING = "crowdfunding"  # クラウドファンディング
    ONLINE_GOODS = "online_goods"  # オンラインで地域の産物購入


class PartnerKind(StrEnum):
    """Partner companies whose points convert into municipal points."""

    CREDIT_CARD = "credit_card"
    AIRLINE = "airline"
    MOBILE = "mobile"
    OTHER = "other"


class Municipality(Base):
    """A municipality (市区町村) running points, by its local government code."""

    __tablename__ = "points_municipalities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(6), unique=True)  # 全国地方公共団体コード
    name: Mapped[str] = mapped_column(String(100))
    # The refund window (返金期間) here; None: the platform's (POINTS_REFUND_WINDOW_DAYS).
    # Past it a payment can no longer be refunded and `flask points compact` removes the
    # link between the citizen and the merchant (webapp.points.retention).
    refund_window_days: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    # Every payment before this instant is compacted: the next `compact` starts here.
    compacted_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The expiry policy (有効期限): the validity a new program or partner starts from.
    default_expiry_days: Mapped[int] = mapped_column(Integer, default=365, server_default="365")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AcceptedCategory(Base):
    """A merchant category the municipality accepts points for."""

    __tablename__ = "points_accepted_categories"
    __table_args__ = (CheckConstraint(_in("category", MerchantCategory), name="category"),)

    municipality_id: Mapped[int] = mapped_column(
        ForeignKey("points_municipalities.id"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(16), primary_key=True)


class Account(Base):
    """A ledger account; `balance` = posted credits - posted debits, kept in the same
    transaction as the transfers that change it."""

    __tablename__ = "points_accounts"
    __table_args__ = (
        UniqueConstraint("municipality_id", "kind", "owner"),
        Index("ix_points_accounts_owner", "owner", "kind"),  # a citizen's accounts
        CheckConstraint(_in("kind", AccountKind), name="kind"),
        # The database refuses what the ledger code already refuses: a backstop.
        CheckConstraint(
            "kind NOT IN ('citizen', 'program') OR balance - debits_pending >= 0",
            name="bounded_not_negative",
        ),
        CheckConstraint("debits_pending >= 0 AND credits_pending >= 0", name="pending"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    kind: Mapped[str] = mapped_column(String(16))
    # MyKey ID for a citizen, the partner/merchant/program id as text, '' for singletons.
    owner: Mapped[str] = mapped_column(String(MYKEY_ID_MAX), default="")
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Transfer(Base):
    """An immutable double-entry transfer; corrections are reversals, never edits."""

    __tablename__ = "points_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
        CheckConstraint(_in("kind", TransferKind), name="kind"),
        CheckConstraint(_in("status", TransferStatus), name="status"),
        Index("ix_points_transfers_debit", "debit_account_id", "created_at"),
        Index("ix_points_transfers_credit", "credit_account_id", "created_at"),
        # Partial: most transfers reverse nothing and resolve no hold, and a NULL would
        # still cost an index entry on every grant (about a tenth of its server time).
        Index(
            "ix_points_transfers_reversal_of",
            "reversal_of",
            sqlite_where=text("reversal_of IS NOT NULL"),
            postgresql_where=text("reversal_of IS NOT NULL"),
        ),
        Index(  # at most one transfer posts or voids a pending one
            "uq_points_transfers_pending_id",
            "pending_id",
            unique=True,
            sqlite_where=text("pending_id IS NOT NULL"),
            postgresql_where=text("pending_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key here, on purpose: the accounts' keys already name the municipality,
    # and the invariant "transfers stay in one municipality" checks this copy of it. A key
    # to the municipality row would make every transfer of a city share-lock that one row
    # (PostgreSQL's multixact on a hot parent), which halved throughput at 8 clients.
    municipality_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(8))
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    payload_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request
    reversal_of: Mapped[int | None] = mapped_column(ForeignKey("points_transfers.id"))
    # Set on the transfer that posts or voids a pending one: at most one per pending.
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("points_transfers.id"))
    program_id: Mapped[int | None] = mapped_column(ForeignKey("points_programs.id"))
    hold_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Posted balance after this transfer, for citizen and merchant sides only (statements
    # and receipts); shared system accounts are updated last to keep their lock short.
    debit_balance: Mapped[int | None] = mapped_column(BigInteger)
    credit_balance: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OpenHold(Base):
    """Work queue of pending transfers not yet posted or voided (bookkeeping, not money)."""

    __tablename__ = "points_open_holds"

    transfer_id: Mapped[int] = mapped_column(ForeignKey("points_transfers.id"), primary_key=True)
    hold_until: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class PointLot(Base):
    """Points credited to a citizen in one go, with their expiry (有効期限)."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining"),
        # Spend order (oldest expiry first) and the expiry job read only live lots.
        Index(
            "ix_points_lots_live",
            "account_id",
            "expires_at",
            "id",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
        Index(
            "ix_points_lots_due",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    transfer_id: Mapped[int] = mapped_column(ForeignKey("points_transfers.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LotMove(Base):
    """How a transfer changed a lot: negative consumes (spend, expiry), positive restores."""

    __tablename__ = "points_lot_moves"
    __table_args__ = (CheckConstraint("delta <> 0", name="delta_nonzero"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("points_transfers.id"), index=True)
    delta: Mapped[int] = mapped_column(BigInteger)


class Program(Base):
    """A municipal grant program (自治体ポイント付与事業) with its budget account."""

    __tablename__ = "points_programs"
    __table_args__ = (
        UniqueConstraint("municipality_id", "code"),
        CheckConstraint(_in("category", ProgramCategory), name="category"),
        CheckConstraint("points_per_grant > 0 AND expiry_days > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    code: Mapped[str] = mapped_column(String(CODE_MAX))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(24))
    points_per_grant: Mapped[int] = mapped_column(BigInteger)
    expiry_days: Mapped[int] = mapped_column(Integer)
    cap_points_per_citizen: Mapped[int | None] = mapped_column(BigInteger)
    cap_grants_per_citizen: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Pays only from starts_at (inclusive) until ends_at (exclusive); None: no bound.
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ProgramCitizenTotal(Base):
    """What one citizen has received from one capped program (cap enforcement)."""

    __tablename__ = "points_program_citizen_totals"

    program_id: Mapped[int] = mapped_column(ForeignKey("points_programs.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    grants: Mapped[int] = mapped_column(Integer, default=0)


class Partner(Base):
    """A partner company (協力企業) whose points convert into municipal points."""

    __tablename__ = "points_partners"
    __table_args__ = (CheckConstraint(_in("kind", PartnerKind), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The municipality whose officer registered it and manages its keys; None: a partner
    # set up by the platform (CLI), whose keys no municipality's officer touches.
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("points_municipalities.id"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PartnerKey(Base):
    """A partner API key, stored as SHA-256 of its secret; at most two live for rotation."""

    __tablename__ = "points_partner_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # public half, for lookup
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ConversionTerms(Base):
    """A municipality's terms for one partner: rate, bonus, unit, hold and expiry."""

    __tablename__ = "points_conversion_terms"
    __table_args__ = (
        UniqueConstraint("municipality_id", "partner_id"),
        CheckConstraint(
            "rate_num > 0 AND rate_den > 0 AND bonus_bp >= 0 AND min_unit > 0"
            " AND hold_days >= 0 AND expiry_days > 0",
            name="positive",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"))
    # City points per partner point = rate_num / rate_den, kept as integers: no float.
    rate_num: Mapped[int] = mapped_column(Integer)
    rate_den: Mapped[int] = mapped_column(Integer)
    bonus_bp: Mapped[int] = mapped_column(Integer)  # bonus in basis points of the base
    min_unit: Mapped[int] = mapped_column(BigInteger)  # partner points, a multiple of it
    hold_days: Mapped[int] = mapped_column(Integer)
    expiry_days: Mapped[int] = mapped_column(Integer)
    bonus_program_id: Mapped[int | None] = mapped_column(ForeignKey("points_programs.id"))
    partner_account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Conversion(Base):
    """One partner conversion as requested (immutable); its state is in its transfers.

    `bonus_points` is the bonus the terms gave (asked); what the bonus program paid, up
    to its caps and budget, is the amount of `bonus_transfer_id` (none: nothing paid)."""

    __tablename__ = "points_conversions"
    __table_args__ = (
        UniqueConstraint("partner_id", "reference"),
        Index("ix_points_conversions_report", "municipality_id", "partner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("points_partners.id"))
    reference: Mapped[str] = mapped_column(String(64))  # the partner's own reference
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    citizen_account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"))
    partner_points: Mapped[int] = mapped_column(BigInteger)
    base_points: Mapped[int] = mapped_column(BigInteger)
    bonus_points: Mapped[int] = mapped_column(BigInteger)
    base_transfer_id: Mapped[int] = mapped_column(ForeignKey("points_transfers.id"), index=True)
    bonus_transfer_id: Mapped[int | None] = mapped_column(ForeignKey("points_transfers.id"))
    hold_until: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Merchant(Base):
    """A place that accepts points (加盟店): museum, shop, bus operator, ..."""

    __tablename__ = "points_merchants"
    __table_args__ = (
        UniqueConstraint("municipality_id", "code"),
        CheckConstraint(_in("category", MerchantCategory), name="category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    code: Mapped[str] = mapped_column(String(CODE_MAX))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """One change an officer made to the municipality's points set-up (監査ログ).

    Who (the staff login, kept as text: the log outlives an account), when, what (an
    action and its subject) and the changed fields before and after. Never citizen data:
    set-up only (programs, merchants, tills, staff, partners, keys, the expiry policy).
    """

    __tablename__ = "points_audit_log"
    __table_args__ = (Index("ix_points_audit_log_municipality", "municipality_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    # {field: [before, after]}: JSON scalars only (numbers, text, true/false, null).
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class (typed for Core inserts)."""
    return cast(Table, model.__table__)


class CauseKind(StrEnum):
    """A cause takes donations; a project (crowdfunding) has a goal and an end."""

    CAUSE = "cause"  # 社会貢献 (災害復興支援等)
    PROJECT = "project"  # クラウドファンディング


class MissPolicy(StrEnum):
    """What happens to a project's points when it misses its goal (the municipality's
    choice): returned to the citizens (reversals into their lots), or kept."""

    RETURN = "return"
    KEEP = "keep"


class CauseStatus(StrEnum):
    """A cause or project: open; closed by the officer; a project settled after its end."""

    OPEN = "open"
    CLOSED = "closed"
    MET = "met"  # goal reached by the end
    MISSED_KEPT = "missed_kept"
    MISSED_RETURNED = "missed_returned"


class Cause(Base):
    """A cause or crowdfunding project a citizen gives points to (寄付先・プロジェクト).

    Its points sit on its own account (kind `merchant`, owner `cause:<code>`): what the
    municipality owes the cause. A project has a goal and an end (`ends_at`, exclusive);
    `flask points settle-projects` settles it after the end: met, missed and kept, or
    missed and returned (each donation reversed into the lots it came from; a lot already
    past its expiry gets a fresh one of `fresh_days`)."""

    __tablename__ = "points_causes"
    __table_args__ = (
        UniqueConstraint("municipality_id", "code"),
        CheckConstraint(_in("kind", CauseKind), name="kind"),
        CheckConstraint(_in("miss_policy", MissPolicy), name="miss_policy"),
        CheckConstraint(_in("status", CauseStatus), name="status"),
        CheckConstraint(
            "kind = 'cause' OR (goal_points > 0 AND ends_at IS NOT NULL)", name="project"
        ),
        CheckConstraint("fresh_days > 0", name="fresh_days"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("points_municipalities.id"))
    code: Mapped[str] = mapped_column(String(CODE_MAX))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    kind: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[int] = mapped_column(ForeignKey("points_accounts.id"), unique=True)
    goal_points: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    miss_policy: Mapped[str] = mapped_column(String(16), default=MissPolicy.RETURN.value)
    fresh_days: Mapped[int] = mapped_column(Integer, default=30)
    status: Mapped[str] = mapped_column(String(16), default=CauseStatus.OPEN.value)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


POINTS_TABLES = [
    table(m)
    for m in (
        Municipality,
        AcceptedCategory,
        Account,
        Program,
        Transfer,
        OpenHold,
        PointLot,
        LotMove,
        ProgramCitizenTotal,
        Partner,
        PartnerKey,
        ConversionTerms,
        Conversion,
        Merchant,
        AuditEntry,
        Cause,
    )
]

# The ledger's PostgreSQL functions (webapp.points.pg_functions) are created with the
# tables by create_all, as the migrations create them for deployments.
from .pg_functions import install as _install_functions  # noqa: E402  (after the tables)

_install_functions(table(Transfer))
