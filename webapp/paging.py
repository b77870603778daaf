"""One page of an admin list: the page number and search box read from the query
string, and a bounded page of rows with a capped count.

No admin page grows with the size of the country: every list reads PAGE_SIZE rows (one
more, to know whether a next page exists) and counts at most COUNT_CAP matches. A page
number or query from the query string never fails: anything odd is page 1 or no query.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from flask import request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

PAGE_SIZE = 50
COUNT_CAP = 1000  # "more than 1,000": search instead of paging further
MAX_PAGE = 2000  # 100,000 rows deep at most (an OFFSET past that is a search's job)
QUERY_LENGTH = 100


def page_arg(name: str = "page") -> int:
    """The 0-based page number of `?name=` (1-based in the URL), within 0..MAX_PAGE-1."""
    raw = request.args.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return 0
    return max(1, min(int(raw), MAX_PAGE)) - 1


def id_arg(name: str) -> int | None:
    """A row id from the query string; None unless it is plain digits that fit a BIGINT."""
    raw = request.args.get(name, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def query_arg(name: str = "q") -> str:
    """The search box's text: control characters dropped, spaces trimmed, bounded."""
    raw = request.args.get(name, "")[: QUERY_LENGTH * 4]
    kept = "".join(c for c in raw if not unicodedata.category(c).startswith("C"))
    return kept.strip()[:QUERY_LENGTH]


def contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (use with escape="\\\\"): % and _ are
    matched as themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Page:
    """A page of rows, its 0-based number, and the (capped) number of matches."""

    rows: list[Any] = field(default_factory=list)
    page: int = 0
    total: int = 0
    capped: bool = False

    @property
    def has_next(self) -> bool:
        """Whether a next page exists."""
        return (self.page + 1) * PAGE_SIZE < self.total or (
            self.capped and len(self.rows) == PAGE_SIZE
        )

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 if empty)."""
        return self.page * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        """The 1-based position of the page's last row."""
        return self.page * PAGE_SIZE + len(self.rows)


def paginate(s: Session, stmt: Select[Any], page: int, *, scalars: bool = True) -> Page:
    """One page of `stmt` (already filtered and ordered) and its capped count."""
    page = max(0, min(page, MAX_PAGE - 1))
    counted = stmt.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = s.scalar(select(func.count()).select_from(counted)) or 0
    paged = stmt.limit(PAGE_SIZE).offset(page * PAGE_SIZE)
    rows = list(s.scalars(paged)) if scalars else list(s.execute(paged))
    return Page(rows, page, min(total, COUNT_CAP), total > COUNT_CAP)
