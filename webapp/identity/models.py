"""Identity tables: MyKey IDs, card bindings, service links and aggregate lookup counts.

Rules: no card identifier in the clear (a binding is a keyed hash), no usage history per
person (lookups only bump a per-provider, per-day counter), the My Number never appears.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..providers.models import Provider  # noqa: F401  (the providers table must be known)

MYKEY_ID_LENGTH = 8
CARD_KEY_LENGTH = 32  # HMAC-SHA-256 of issuer + serial, computed by webapp.jpki


class MyKeyID(Base):
    """A MyKey ID (マイキーID): 8 random characters the citizen creates with their card."""

    __tablename__ = "mykey_ids"

    id: Mapped[str] = mapped_column(String(MYKEY_ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rerolls_used: Mapped[int] = mapped_column(Integer, default=0)


class CardBinding(Base):
    """A card bound to a MyKey ID, as a keyed hash only (カード識別子は平文で保存しない)."""

    __tablename__ = "card_bindings"

    card_key: Mapped[bytes] = mapped_column(LargeBinary(CARD_KEY_LENGTH), primary_key=True)
    mykey_id: Mapped[str] = mapped_column(
        ForeignKey("mykey_ids.id", ondelete="CASCADE"), index=True
    )
    # Expiry of the user-authentication certificate (利用者証明用電子証明書): tells when a
    # renewed card must be re-bound. No raw certificate and no raw serial are kept.
    cert_not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Verification:
    """How a link's number was shown to belong to the citizen (docs/identity.md).

    UNVERIFIED: claimed by the citizen (any number that passes the library's rule). It
    never opens the account by itself: the counter shows it with a "check the library
    card once" notice and never types it. Several citizens may claim the same number;
    the one who proves it gets it, and the other claims go.
    STAFF: staff saw the physical library card at a counter.
    LIBRARY: the library's own system said so (SIP2 63/64: valid patron, valid password).
    """

    UNVERIFIED = "unverified"
    STAFF = "staff"
    LIBRARY = "library"
    ALL = (UNVERIFIED, STAFF, LIBRARY)
    VERIFIED = (STAFF, LIBRARY)


class ServiceLink(Base):
    """A service ID (サービスID): a provider's customer number linked to a MyKey ID."""

    __tablename__ = "service_links"
    __table_args__ = (
        UniqueConstraint("mykey_id", "provider_id", name="uq_service_links_mykey_provider"),
        # A number is verified for one citizen at most; unverified claims may repeat (so a
        # claim never tells anyone whether the number is someone else's).
        Index(
            "uq_service_links_verified_number",
            "provider_id",
            "customer_number",
            unique=True,
            sqlite_where=text("verification <> 'unverified'"),
            postgresql_where=text("verification <> 'unverified'"),
        ),
        Index("ix_service_links_provider_number", "provider_id", "customer_number"),
        CheckConstraint("verification IN ('unverified', 'staff', 'library')", name="verification"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mykey_id: Mapped[str] = mapped_column(ForeignKey("mykey_ids.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    customer_number: Mapped[str] = mapped_column(String(64))
    accepted_terms_version: Mapped[int] = mapped_column(Integer)
    verification: Mapped[str] = mapped_column(String(16), default=Verification.UNVERIFIED)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    @property
    def verified(self) -> bool:
        """Shown to belong to the citizen (by staff or by the library's system)."""
        return self.verification in Verification.VERIFIED


class LookupCount(Base):
    """Lookups per provider per day (集計のみ): the only trace a counter lookup leaves."""

    __tablename__ = "lookup_counts"

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class RebindConflict(Base):
    """Two MyKey IDs of one citizen that both hold links or points: staff decide.

    Written by an import that could not move a card's binding without merging them;
    removed by staff once resolved. Holds the two IDs only (no card key, no serial, no
    date: nothing about the renewal is kept beyond the binding).
    """

    __tablename__ = "identity_rebind_conflicts"
    __table_args__ = (UniqueConstraint("old_mykey_id", "new_mykey_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    old_mykey_id: Mapped[str] = mapped_column(String(MYKEY_ID_LENGTH))
    new_mykey_id: Mapped[str] = mapped_column(String(MYKEY_ID_LENGTH))
