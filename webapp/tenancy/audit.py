"""Record and read the administrators' audit log (webapp/tenancy/models.py).

`record` adds the entry to the caller's transaction, so a change and its entry commit
together or not at all (as webapp/points/audit.py does for the officers).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..points.audit import _plain
from ..points.models import Municipality
from ..points.validation import utc_now
from .models import AdminAuditEntry

PAGE = 50
SUBJECT_MAX = 200


def municipality_id_of(s: Session, code: str) -> int | None:
    """The tenant of a 全国地方公共団体コード (None if no municipality has it yet)."""
    if not code:
        return None
    return s.scalar(select(Municipality.id).where(Municipality.code == code))


def record(
    s: Session,
    municipality_id: int | None,
    actor: str,
    action: str,
    subject: str,
    changes: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> AdminAuditEntry:
    """Add one entry to the session's transaction (committed with the change itself)."""
    entry = AdminAuditEntry(
        municipality_id=municipality_id,
        at=utc_now(now),
        actor=actor[:64],
        action=action[:40],
        subject=subject[:SUBJECT_MAX],
        changes={
            k: _plain(v) if not isinstance(v, list) else [_plain(x) for x in v]
            for k, v in (changes or {}).items()
        },
    )
    s.add(entry)
    return entry


def entries(
    s: Session, municipality_id: int | None, *, before: int | None = None, limit: int = PAGE
) -> list[AdminAuditEntry]:
    """Entries newest first: one municipality's, or (None) every one; `before` an id to
    page on from (keyset, on the (municipality_id, id) index or the primary key)."""
    stmt = select(AdminAuditEntry)
    if municipality_id is not None:
        stmt = stmt.where(AdminAuditEntry.municipality_id == municipality_id)
    if before is not None:
        stmt = stmt.where(AdminAuditEntry.id < before)
    return list(s.scalars(stmt.order_by(AdminAuditEntry.id.desc()).limit(limit)))
