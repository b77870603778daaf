"""The privacy scan (`flask points privacy-scan`): a citizen and a merchant on one row,
older than the refund window, in any table.

The tables are not listed here: they are read from the metadata, so a table added later
is covered. A row refers to a ledger account through a foreign key to
`points_accounts` (or a column named like one, `*account_id`), directly or through up
to two other tables (a lot move -> its lot -> the lot's account; a refund -> the spend it
reverses -> its accounts; a terminal -> its merchant -> the merchant's account). An
account of kind `citizen`, or a `mykey_id` column, is a citizen reference; an account of
kind `merchant` (a merchant, a cause or a project) is a merchant reference. A row with
both is a pair. Its age is its own `created_at`/`at`, else that of the first transfer it
refers to; a row with neither counts as old. This is a full scan: an audit, run off-peak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    FromClause,
    Table,
    and_,
    func,
    inspect,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from ...db import Base
from ..models import AccountKind, Municipality, UtcDateTime
from ..validation import utc_now
from . import window

ACCOUNTS = "points_accounts"
TRANSFERS = "points_transfers"
MAX_HOPS = 3  # the table's own column, then up to two tables in between
TIME_COLUMNS = ("created_at", "at")
SAMPLE = 10

Hop = tuple[Column[object], Table, str]  # column here -> table there, its column


@dataclass
class Finding:
    """Pairs found in one table: how many rows, and the primary keys of a few."""

    table: str
    rows: int = 0
    sample: list[tuple[object, ...]] = field(default_factory=list)


def _target(column: Column[object], tables: dict[str, Table]) -> tuple[Table, str] | None:
    """Where a column points: its foreign key, or its name (`*account_id`, `*transfer_id`)."""
    for fk in column.foreign_keys:
        return fk.column.table, fk.column.name
    if column.name.endswith("account_id") and ACCOUNTS in tables:
        return tables[ACCOUNTS], "id"
    if column.name.endswith("transfer_id") and TRANSFERS in tables:
        return tables[TRANSFERS], "id"
    return None


def _paths(table: Table, tables: dict[str, Table], hops: int = MAX_HOPS) -> list[list[Hop]]:
    """Every way from `table` to a ledger account in at most `hops` foreign keys."""
    out: list[list[Hop]] = []
    if hops == 0 or table.name == ACCOUNTS:
        return out
    for column in table.columns:
        where = _target(column, tables)
        if where is None or where[0].name not in tables:
            continue
        there, name = where
        hop: Hop = (column, there, name)
        if there.name == ACCOUNTS:
            out.append([hop])
        elif there is not table or hops == MAX_HOPS:
            out.extend([hop, *rest] for rest in _paths(there, tables, hops - 1))
    return out


@dataclass
class _Plan:
    """The query parts for one table."""

    table: Table
    joined: FromClause
    kinds: list[ColumnElement[object]]
    munis: list[ColumnElement[object]]
    mykeys: list[ColumnElement[object]]
    when: ColumnElement[object] | None


def _plan(table: Table, tables: dict[str, Table]) -> _Plan | None:
    """How to find pairs in `table`, or None when no row of it can hold one."""
    paths = _paths(table, tables)
    mykeys: list[ColumnElement[object]] = [
        c for c in table.columns if c.name == "mykey_id" or c.name.endswith("_mykey_id")
    ]
    if table.name == ACCOUNTS or not paths or (len(paths) < 2 and not mykeys):
        return None
    joined: FromClause = table
    kinds: list[ColumnElement[object]] = []
    munis: list[ColumnElement[object]] = []
    when: ColumnElement[object] | None = next(
        (
            c
            for c in table.columns
            if c.name in TIME_COLUMNS and isinstance(c.type, DateTime | UtcDateTime)
        ),
        None,
    )
    # The age of a row without a time of its own: the transfer it names itself (a lot
    # move's), else the first one reached (a lot's through its origin).
    paths.sort(key=lambda p: p[0][1].name != TRANSFERS)
    for path in paths:
        here: FromClause = table
        for column, there, name in path:
            alias = there.alias()
            joined = joined.outerjoin(alias, alias.c[name] == here.c[column.name])
            if when is None and there.name == TRANSFERS:
                when = alias.c.created_at
            here = alias
        kinds.append(here.c.kind)
        munis.append(here.c.municipality_id)
    return _Plan(table, joined, kinds, munis, mykeys, when)


def _pairs(plan: _Plan) -> ColumnElement[bool]:
    citizen = or_(
        *(k == AccountKind.CITIZEN.value for k in plan.kinds),
        *(m.is_not(None) for m in plan.mykeys),
    )
    merchant = or_(*(k == AccountKind.MERCHANT.value for k in plan.kinds))
    return and_(citizen, merchant)


def scan(session: Session, *, now: datetime | None = None) -> list[Finding]:
    """Every table's rows that join a citizen and a merchant past the window."""
    now = utc_now(now)
    present = set(inspect(session.connection()).get_table_names())
    tables = {t.name: t for t in Base.metadata.sorted_tables if t.name in present}
    cutoffs = [(m.id, window.cutoff(m, now)) for m in session.scalars(select(Municipality))]
    found: list[Finding] = []
    for table in tables.values():
        plan = _plan(table, tables)
        if plan is None:
            continue
        finding = Finding(table.name)
        key: list[ColumnElement[object]] = list(table.primary_key.columns) or [literal(None)]
        muni = func.coalesce(*plan.munis) if len(plan.munis) > 1 else plan.munis[0]
        for muni_id, cut in cutoffs:
            old = literal(True) if plan.when is None else or_(plan.when.is_(None), plan.when < cut)
            where = and_(_pairs(plan), muni == muni_id, old)
            count = session.scalar(select(func.count()).select_from(plan.joined).where(where))
            if count:
                finding.rows += int(count)
                rows = session.execute(
                    select(*key).select_from(plan.joined).where(where).limit(SAMPLE)
                ).all()
                finding.sample.extend(tuple(r) for r in rows[: SAMPLE - len(finding.sample)])
        if finding.rows:
            found.append(finding)
    session.rollback()
    return found


def covered(session: Session) -> list[str]:
    """The tables the scan looks through (those whose rows could hold a pair)."""
    present = set(inspect(session.connection()).get_table_names())
    tables = {t.name: t for t in Base.metadata.sorted_tables if t.name in present}
    return [name for name, t in tables.items() if _plan(t, tables) is not None]
