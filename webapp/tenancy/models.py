"""The administrators' audit log (管理操作ログ): municipalities, their administrators,
providers imported, staff and terminals created or changed, by whom and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base
from ..points.models import BigId, UtcDateTime


class AdminAuditEntry(Base):
    """One change an administrator made (platform or municipal), as the officers' audit
    log keeps theirs (webapp/points/audit.py): who (the login, as text), when, an action
    (`municipality.create`, `providers.import`...), its subject, and what changed.

    `municipality_id` is the tenant the change belongs to (None: a national change, e.g.
    a provider with no municipality yet); a municipal administrator reads its own.
    """

    __tablename__ = "admin_audit_log"
    __table_args__ = (Index("ix_admin_audit_log_municipality", "municipality_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    municipality_id: Mapped[int | None] = mapped_column(
        ForeignKey("points_municipalities.id", ondelete="CASCADE"), nullable=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    # {field: [before, after]} or a summary ({"rows": n}): JSON scalars only.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
