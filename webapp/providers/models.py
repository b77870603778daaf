"""Service providers (サービス提供事業者) and their settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class ProviderKind:
    """The kinds of facility a provider can be (the seed's 公共施設等利用者カード)."""

    LIBRARY = "library"
    MUSEUM = "museum"
    SPORTS = "sports"
    BIKE_PARK = "bike_park"
    LECTURE = "lecture"
    COMMUNITY_PLAZA = "community_plaza"
    TRANSPORT = "transport"
    OTHER = "other"

    ALL = (LIBRARY, MUSEUM, SPORTS, BIKE_PARK, LECTURE, COMMUNITY_PLAZA, TRANSPORT, OTHER)


class Provider(Base):
    """A facility that joins: its code (ISIL for libraries), terms and counter settings."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Libraries: their ISIL (e.g. JP-1000001); others: a code the admin assigns.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    terms_ja: Mapped[str] = mapped_column(Text, default="")
    terms_en: Mapped[str] = mapped_column(Text, default="")
    terms_version: Mapped[int] = mapped_column(default=1)
    # Customer number format rule and counter output: JSON so a provider's settings can
    # grow without a migration per knob; validated by the services layer.
    number_rule: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    counter_settings: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
