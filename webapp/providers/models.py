"""Service providers (サービス提供事業者) and their settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class ProviderKind:
    """The kinds of facility a provider can be (the seed's 公共施設等利用者カード).

    Stored values are stable: a public library stays "library" (its rows and ISIL rule
    predate the university library), and the civic plaza is "community_plaza".
    """

    LIBRARY = "library"  # 公共図書館 (public library)
    UNIVERSITY_LIBRARY = "university_library"  # 大学図書館
    MUSEUM = "museum"  # 博物館・美術館
    SPORTS = "sports"  # スポーツ施設
    BIKE_PARK = "bike_park"  # 駐輪場
    LECTURE = "lecture"  # 講座
    COMMUNITY_PLAZA = "community_plaza"  # 市民広場・交流施設 (civic plaza)
    SHOPPING_STREET = "shopping_street"  # 商店街
    OTHER = "other"

    ALL = (
        LIBRARY,
        UNIVERSITY_LIBRARY,
        MUSEUM,
        SPORTS,
        BIKE_PARK,
        LECTURE,
        COMMUNITY_PLAZA,
        SHOPPING_STREET,
        OTHER,
    )
    # Kinds identified by an ISIL (ISO 15511) and able to verify a number by SIP2.
    LIBRARIES = (LIBRARY, UNIVERSITY_LIBRARY)


class Provider(Base):
    """A facility that joins: its code (ISIL for libraries), terms and counter settings."""

    __tablename__ = "providers"
    __table_args__ = (
        # Browsing (prefecture -> municipality -> facility) and the kiosk's own town.
        Index("ix_providers_place", "prefecture_code", "municipality_code", "search_name"),
        Index("ix_providers_municipality", "municipality_code", "search_name"),
        Index("ix_providers_search_name", "search_name"),
    )

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
    # Where it is: 全国地方公共団体コード (6 digits with the check digit, webapp/places/codes.py);
    # the municipality may be the prefecture itself (a prefectural library). Empty: not set.
    prefecture_code: Mapped[str] = mapped_column(String(6), default="", server_default="")
    municipality_code: Mapped[str] = mapped_column(String(6), default="", server_default="")
    municipality_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # The name's reading (よみ), as entered (hiragana or katakana).
    name_kana: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Search keys (webapp/places/kana.py search_key): the reading, else the name, for
    # sorting; and name + reading + code, for the kiosk's search box.
    search_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    search_text: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
