"""Terminals (counter, kiosk, shop till), their bridges and one-time pairing codes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Dialect, ForeignKey, Index, String, TypeDecorator
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base
from ..points.models import Merchant  # noqa: F401  (the merchants table must be known)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: timestamptz on PostgreSQL, naive UTC on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class TerminalKind:
    """Where a terminal stands (the seed's カウンター / キオスク / 加盟店, and 自宅).

    `home` is a citizen's own card reader at home: no provider, made by the citizen's
    browser (/home), bound to that browser only. Admins never create one.
    """

    COUNTER = "counter"
    KIOSK = "kiosk"
    MERCHANT = "merchant"
    HOME = "home"

    ALL = (COUNTER, KIOSK, MERCHANT, HOME)
    # What admins (and the admin API) may create; a home terminal only comes from /home.
    STAFFED = (COUNTER, KIOSK, MERCHANT)
    # Where a citizen serves themself with card + PIN (the kiosk flow).
    SELF_SERVICE = (KIOSK, HOME)


class Terminal(Base):
    """A place where a citizen puts the card down: a library counter, a kiosk, a till.

    A shop till (kind `merchant`) names the merchant (加盟店) it takes points for; only
    that merchant's staff open it. Other kinds have no merchant. The services layer keeps
    that rule (`services.create_terminal`, `services.set_merchant`).

    A home terminal (kind `home`) has no provider (the database says so: a CHECK), so no
    staff member's provider ever matches it; it carries the hash of the secret its
    browser holds (`owner_key_hash`) and when it was last used (`last_used_at`, for the
    clean-up of idle ones).
    """

    __tablename__ = "terminals"
    __table_args__ = (
        CheckConstraint("(kind = 'home') = (provider_id IS NULL)", name="home_has_no_provider"),
        Index("ix_terminals_kind_last_used_at", "kind", "last_used_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    # Same database and metadata as the points tables (one Base, one migration history),
    # so a real foreign key: a merchant with tills cannot be deleted from under them.
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("points_merchants.id"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Home terminals only: SHA-256 of the 256-bit secret in the owner's session cookie.
    owner_key_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    bridges: Mapped[list[BridgeDevice]] = relationship(back_populates="terminal")


class BridgeDevice(Base):
    """A paired bridge: the public halves of its two device keys, and when it was seen.

    `id` is public (it is in every frame and in the sealed-PIN context); the keys are
    public keys. A revoked bridge never authenticates again: pairing makes a new one.
    """

    __tablename__ = "bridge_devices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    # Ed25519 raw public key (base64url): checks the signature on every connect.
    auth_public_key: Mapped[str] = mapped_column(String(64))
    # P-256 raw uncompressed point (base64url): browsers seal PINs to it.
    seal_public_key: Mapped[str] = mapped_column(String(100))
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The worker holding its WebSocket right now (None when disconnected); with a fresh
    # last_seen_at this says "online" without asking the bus.
    connected_worker: Mapped[str | None] = mapped_column(String(64), default=None)

    terminal: Mapped[Terminal] = relationship(back_populates="bridges")

    @property
    def active(self) -> bool:
        """True until revoked."""
        return self.revoked_at is None


class PairingCode(Base):
    """A one-time code an admin made for a terminal: short-lived, single use, hash only."""

    __tablename__ = "bridge_pairing_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    bridge_id: Mapped[str | None] = mapped_column(String(40), default=None)
