"""The officers' audit log (監査ログ): who changed what in a municipality's points set-up.

`record` adds an entry to the caller's transaction, so the change and its entry commit
together or not at all. An entry names the staff login, the instant, an action
(`program.create`, `partner.key_issue`...), its subject (a code and a name: set-up, never
a citizen) and the changed fields as {field: [before, after]}. Reading is per
municipality, newest first, by keyset pages on the (municipality_id, id) index.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry
from .validation import utc_now

PAGE = 50
SUBJECT_MAX = 200


def _plain(value: Any) -> Any:
    """A JSON scalar for a field's value (dates as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields whose value changed (absent = None)."""
    out: dict[str, list[Any]] = {}
    for field in (*before, *(f for f in after if f not in before)):
        old, new = _plain(before.get(field)), _plain(after.get(field))
        if old != new:
            out[field] = [old, new]
    return out


def record(
    session: Session,
    municipality_id: int,
    actor: str,
    action: str,
    subject: str,
    changes: Mapping[str, list[Any]],
    *,
    now: datetime | None = None,
) -> AuditEntry:
    """Add one entry to the session's transaction (committed with the change itself)."""
    entry = AuditEntry(
        municipality_id=municipality_id,
        at=utc_now(now),
        actor=actor[:64],
        action=action,
        subject=subject[:SUBJECT_MAX],
        changes=dict(changes),
    )
    session.add(entry)
    return entry


def entries(
    session: Session, municipality_id: int, *, before: int | None = None, limit: int = PAGE
) -> list[AuditEntry]:
    """The municipality's entries, newest first; `before` an id to page on from."""
    stmt = select(AuditEntry).where(AuditEntry.municipality_id == municipality_id)
    if before is not None:
        stmt = stmt.where(AuditEntry.id < before)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
