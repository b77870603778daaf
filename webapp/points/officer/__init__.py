"""What a municipality's points officer changes in the UI: programs, merchants and their
tills and staff, partners with their terms and API keys, and the expiry policy.

Every function takes the officer's municipality and login, refuses anything of another
municipality as if it did not exist (NotFound), validates with a PointsError whose code
the catalogue words, and writes its audit entry (webapp.points.audit) in the same
transaction as the change. Nothing is cached: every payment reads a program's terms in
its own transaction (programs.program_terms), so a change applies to the next request on
every worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit
from ..errors import Code, InvalidInput

_CODE = re.compile(r"[A-Z0-9_-]{1,32}")
NAME_MAX = 200
MAX_DAYS = 3650  # ten years: a validity or hold beyond that is a typo
MAX_BP = 100_000  # a bonus of 1,000 %


@dataclass(frozen=True, slots=True)
class Officer:
    """Who acts (their login, for the log) and for which municipality."""

    municipality_id: int
    login: str

    def log(
        self,
        session: Session,
        action: str,
        subject: str,
        changes: Mapping[str, list[Any]],
        now: datetime | None = None,
    ) -> None:
        """Add the audit entry of a change to the session's transaction."""
        audit.record(session, self.municipality_id, self.login, action, subject, changes, now=now)


def check_code(code: str) -> str:
    """A code as stored: upper case, or InvalidInput."""
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        raise InvalidInput(Code.INVALID_CODE, code[:40])
    return code


def check_name(name: str) -> str:
    """A name with its spaces tidied, 1-200 characters, or InvalidInput."""
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(Code.INVALID_INPUT, "name: 1-200 characters")
    return name


def check_days(value: int, field: str, low: int = 1) -> int:
    """A number of days within [low, MAX_DAYS], or InvalidInput."""
    if not low <= value <= MAX_DAYS:
        raise InvalidInput(Code.INVALID_INPUT, f"{field}: {low}-{MAX_DAYS}")
    return value


def check_dates(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """An end after the start, or InvalidInput."""
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInput(Code.INVALID_DATES)


def fields_of(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of a row, for the audit's before and after."""
    return {n: getattr(row, n) for n in names}


@contextmanager
def unique_code(session: Session, code: str) -> Iterator[None]:
    """A code another request took between our check and our commit: DUPLICATE_CODE,
    with nothing kept (the unique constraint decides; the check before is for the
    message)."""
    try:
        yield
    except IntegrityError:
        session.rollback()
        raise InvalidInput(Code.DUPLICATE_CODE, code) from None
