"""A library's SIP2 connection, as its provider admin set it (docs/sip2.md).

The library system's passwords (the `93` login password, the `AC` terminal password)
open that system: the platform never holds them in the clear. The admin's page seals
each one to the connector bridge's key (bridge.seal.seal_secret, purposes `sip2-login`
and `sip2-terminal`, bound to `tls://host:port` or `tcp://host:port`), and the row keeps
the envelopes and the bridge they were sealed to: only that bridge opens them, and only
for that address. A new connector bridge, or a new address, needs the passwords typed
again.

Nothing about patrons is kept here, nor anywhere: a verification's answer lives for the
request that asked it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..terminals.models import UTCDateTime

CHARSETS = ("utf-8", "shift_jis", "cp850")


class LibrarySip2(Base):
    """One library's connection to its own system, through one of its bridges."""

    __tablename__ = "library_sip2"
    __table_args__ = (
        CheckConstraint("charset IN ('utf-8', 'shift_jis', 'cp850')", name="charset"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
    )

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    # The terminal whose bridge talks to the library system (the connector), and the
    # bridge the passwords were sealed to: when the terminal's bridge is another one
    # (re-paired), the envelopes no longer open and the admin types the passwords again.
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    bridge_id: Mapped[str] = mapped_column(String(40))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    ca_pem: Mapped[str | None] = mapped_column(Text, default=None)
    charset: Mapped[str] = mapped_column(String(16), default="utf-8")
    checksums: Mapped[bool] = mapped_column(Boolean, default=False)
    # The system answers 23 Patron Status (FOLIO's edge-sip2 does not: 63 is used).
    patron_status: Mapped[bool] = mapped_column(Boolean, default=True)
    institution_id: Mapped[str] = mapped_column(String(64), default="")
    location_code: Mapped[str] = mapped_column(String(64), default="")
    login_user: Mapped[str] = mapped_column(String(64))
    login_password: Mapped[dict[str, Any]] = mapped_column(JSON)  # sealed envelope
    terminal_password: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last "Test connection": when, and its outcome ("ok" or a sip2_* code).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    check_code: Mapped[str | None] = mapped_column(String(32), default=None)

    def target(self) -> str:
        """What the sealed passwords are bound to (Sip2Config.target)."""
        return f"{'tls' if self.tls else 'tcp'}://{self.host.lower()}:{self.port}"
