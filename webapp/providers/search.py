"""Finding a facility among thousands: search and browse, bounded and indexed.

Every answer is one page (PAGE_SIZE rows at most) and a capped count, so neither the
query nor the page grows with the size of the country. The search box matches the
search key (webapp/places/kana.py: NFKC, katakana as hiragana, lower case, no spaces) of
name + reading + English name + code (ISIL): a prefix of the reading sorts first. Browsing
reads the (prefecture, municipality, search_name) index. Plain Python over a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from ..places import codes
from ..places.kana import search_key
from .models import Provider

PAGE_SIZE = 10
COUNT_CAP = 500  # "more than 500" is all a person needs to hear
MAX_PAGE = COUNT_CAP // PAGE_SIZE - 1  # past 500 results, a citizen types more instead
QUERY_LENGTH = 40  # characters of a query kept (a facility's name is rarely longer)
MUNICIPALITIES_SHOWN = 300  # more than any prefecture has (Hokkaido: 179 + itself)


@dataclass(frozen=True)
class Page:
    """One page of facilities: the rows, the (capped) count, whether there is more."""

    providers: list[Provider]
    total: int
    capped: bool
    page: int

    @property
    def more(self) -> bool:
        """Whether a next page exists."""
        return (self.page + 1) * PAGE_SIZE < self.total


def clean_query(raw: object) -> str:
    """The query's search key, bounded; '' for anything that is not text."""
    if not isinstance(raw, str):
        return ""
    return search_key(raw[: QUERY_LENGTH * 4])[:QUERY_LENGTH]


def clean_page(raw: object) -> int:
    """A page number within 0..MAX_PAGE (anything else is 0)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        return 0
    return min(max(raw, 0), MAX_PAGE)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page(s: Session, where: list[Any], order: list[Any], page: int) -> Page:
    """One page and its count in one query: `count(*) OVER ()` is taken on the rows the
    WHERE keeps, before the ORDER BY's LIMIT, so one scan answers both (a search scans
    the providers once per keystroke, not twice). Capped at COUNT_CAP as said."""
    rows = s.execute(
        select(Provider, func.count().over())
        .where(*where)
        .order_by(*order, Provider.search_name, Provider.id)
        .offset(page * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    if rows:
        total = int(rows[0][1])
    elif page == 0:
        total = 0
    else:  # past the last page (a stale page number): count on its own
        counted = select(Provider.id).where(*where).limit(COUNT_CAP + 1).subquery()
        total = s.scalar(select(func.count()).select_from(counted)) or 0
    return Page([row[0] for row in rows], min(total, COUNT_CAP), total > COUNT_CAP, page)


def search(s: Session, query: str, page: int = 0, near: str | ColumnElement[str] = "") -> Page:
    """Facilities whose name, reading or code contains `query` (a search key); those in
    the municipality `near` first, then readings that start with the query. `near` may
    be an expression (a kiosk's own municipality as a scalar subquery: no read of its
    own)."""
    if not query:
        return Page([], 0, False, 0)
    where = [Provider.search_text.like(_like(query), escape="\\")]
    has_near = near is not None if isinstance(near, ColumnElement) else bool(near)
    order: list[Any] = [case((Provider.municipality_code == near, 0), else_=1)] if has_near else []
    order.append(case((Provider.search_name.like(_like(query)[1:], escape="\\"), 0), else_=1))
    return _page(s, where, order, page)


def in_municipality(s: Session, municipality: str, page: int = 0) -> Page:
    """The facilities of one municipality, by reading."""
    return _page(s, [Provider.municipality_code == municipality], [], page)


def municipalities(s: Session, prefecture: str) -> list[tuple[str, str, int]]:
    """(code, name, facilities) of the municipalities of a prefecture that have facilities."""
    rows = s.execute(
        select(
            Provider.municipality_code,
            func.min(Provider.municipality_name),
            func.count(),
        )
        .where(Provider.prefecture_code == prefecture)
        .group_by(Provider.municipality_code)
        .order_by(Provider.municipality_code)
        .limit(MUNICIPALITIES_SHOWN)
    ).all()
    return [(code, name, count) for code, name, count in rows]


def prefectures() -> list[tuple[str, str, str]]:
    """(6-digit code, name, reading) of the 47 prefectures, in JIS order."""
    return [
        (codes.with_check_digit(two + "000"), name, kana)
        for two, (name, kana) in codes.PREFECTURES.items()
    ]


def valid_code(raw: object) -> str:
    """A valid local government code, or '' (the kiosk's input is never trusted)."""
    if not isinstance(raw, str) or len(raw) > 12:
        return ""
    try:
        return codes.validate(raw).code
    except codes.CodeError:
        return ""
