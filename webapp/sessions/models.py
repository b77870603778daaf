"""Server-side web sessions (ウェブセッション): what a browser's opaque cookie stands for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..staff.models import StaffUser  # noqa: F401  (the staff table must be known)
from ..terminals.models import Terminal, UTCDateTime  # noqa: F401  (the terminals table too)


class SessionKind:
    """What a session is, derived from its data whenever it is saved.

    `staff`: a signed-in staff member (with or without a counter terminal open);
    `kiosk`: a browser an admin turned into a kiosk; `home`: a citizen's browser that
    owns a home terminal; `anonymous`: anything else worth keeping (the language, a CSRF
    token for the sign-in form).
    """

    ANONYMOUS = "anonymous"
    STAFF = "staff"
    KIOSK = "kiosk"
    HOME = "home"

    ALL = (ANONYMOUS, STAFF, KIOSK, HOME)
    # A terminal outlives the browser's restarts: its cookie carries a Max-Age.
    PERSISTENT = (KIOSK, HOME)


# SHA-256 hex of the cookie's token: the row's key, never the token itself.
KEY_LENGTH = 64
# What the admin page shows of a browser ("Chrome 131 on Windows"), never the raw header.
USER_AGENT_LENGTH = 100


class WebSession(Base):
    """One browser's server-side session, keyed by the SHA-256 of its cookie's token.

    The token (256 random bits) lives only in the browser: a copy of this table opens
    nothing. `kind`, `staff_id` and `terminal_id` are copies of what `data` says, kept in
    columns so that every session of a staff member or a terminal can be listed and
    ended with an index. A session ends at `ends_at`: the earlier of its absolute end
    (`expires_at`) and `idle_seconds` after it was last seen, moved on (at most once a
    minute) while the browser uses it.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('anonymous', 'staff', 'kiosk', 'home')",
            name="kind",
        ),
        # The bindings on the admin page (kiosk and home sessions, latest first).
        Index("ix_web_sessions_kind_last_seen_at", "kind", "last_seen_at"),
    )

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True, default=None
    )
    terminal_id: Mapped[int | None] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True, default=None
    )
    # Flask's tagged JSON of the session dict; bounded by store.MAX_DATA_CHARS.
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The admin page lists sessions latest first.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Absolute end, fixed when the row is made: created_at + the kind's lifetime.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    idle_seconds: Mapped[int] = mapped_column(Integer)
    # min(expires_at, last_seen_at + idle_seconds): the clean-up deletes by this index.
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Staff and kiosk devices only; never for a citizen's browser (home, anonymous).
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_LENGTH), default=None)
