"""Staff accounts (職員アカウント): admins, counter staff, points officers, merchant staff."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..points.models import Merchant, Municipality  # noqa: F401  (their tables must be known)
from ..providers.models import Provider  # noqa: F401  (the providers table must be known)


class Role(enum.StrEnum):
    """What a staff account may do."""

    PLATFORM_ADMIN = "platform_admin"  # プラットフォーム管理者: every provider and account
    # 自治体管理者: one municipality's providers, their terminals and staff, its officers
    MUNICIPAL_ADMIN = "municipal_admin"
    PROVIDER_ADMIN = "provider_admin"  # 施設管理者: their own provider's settings and staff
    COUNTER_STAFF = "counter_staff"  # 窓口職員: the counter pages of their provider
    POINTS_OFFICER = "points_officer"  # ポイント担当職員: one municipality's grants and totals
    MERCHANT_STAFF = "merchant_staff"  # 加盟店スタッフ: one merchant's settlement and refunds


class StaffUser(Base):
    """A staff login; the password is kept only as an argon2id hash."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(24))
    # None for platform admins, points officers and merchant staff.
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True, nullable=True
    )
    # The scope of a points officer or a municipal administrator (their municipality) or
    # of merchant staff (their shop).
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("points_municipalities.id", ondelete="CASCADE"), index=True, nullable=True
    )
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("points_merchants.id", ondelete="CASCADE"), index=True, nullable=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on a password change or deactivation: sessions carrying an older value end.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
