"""The scale data builder (bench/scale_data.py) at a tiny size, on PostgreSQL, and the two
platform changes its figures led to (docs/scale.md).

The builder drops and re-creates a database of its own: the test database's name with
`_scale_data` appended (e.g. test_scale_data), dropped after. The server is
ICHIMAI_TEST_PG_URL; unreachable: skip locally, fail under CI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from bench import scale_data
from tests.support.postgres import PG_URL, server_engine
from webapp.db import make_engine
from webapp.identity import counts
from webapp.identity import services as identity
from webapp.identity.models import LookupCount
from webapp.jpki import card_key
from webapp.places import codes
from webapp.points import reports
from webapp.points.invariants import violations
from webapp.points.models import Account, Merchant, Municipality, Transfer
from webapp.providers.models import Provider

IDS = 1_000
LATER = datetime(2027, 1, 1, tzinfo=UTC)  # after the data's year


def card_of(i: int) -> bytes:
    """Citizen i's card key, as the platform's verifier computes it."""
    return card_key(scale_data.CARD_KEY_SECRET, scale_data.ISSUER_DER, scale_data.card_serial(i))


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[scale_data.Built, Engine]]:
    """A country with 1,000 MyKey IDs, in a database of its own."""
    with server_engine():
        pass  # skips (or fails under CI) when the server does not answer
    url = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1) + "_scale_data"
    scale_data.create_database(url, migrate=False)  # the app's create path: faster
    engine = make_engine(scale_data.sa_url(url))
    try:
        yield scale_data.build(url, IDS), engine
    finally:
        engine.dispose()
        server, name = url.rsplit("/", 1)
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_counts_and_ledger_invariants(built: tuple[scale_data.Built, Engine]) -> None:
    result, engine = built
    towns = len(result.towns)
    assert towns == 1741
    assert result.counts["mykey_ids"] == result.counts["card_bindings"] == IDS
    assert result.counts["service_links"] == IDS * 3 // 2
    assert result.counts["providers"] == 5_000
    assert result.counts["terminals"] == 20_000
    programs = towns * scale_data.PROGRAMS_PER_TOWN
    assert result.counts["points_transfers"] == 2 * IDS + programs
    with Session(engine) as s:
        assert violations(s) == {}
        # The counts the builder reports are what the tables hold.
        for table, n in result.counts.items():
            assert s.scalar(text(f"SELECT COUNT(*) FROM {table}")) == n, table  # noqa: S608
        # Every code is a valid 全国地方公共団体コード, and providers sit in those towns.
        town_codes = s.scalars(select(Municipality.code)).all()
        assert len(set(town_codes)) == towns
        for code in town_codes:
            codes.validate(code)
        outside = s.scalar(
            select(func.count())
            .select_from(Provider)
            .where(Provider.municipality_code.not_in(town_codes))
        )
        assert outside == 0


def test_card_keys_are_the_platforms(built: tuple[scale_data.Built, Engine]) -> None:
    """Citizen i's card, keyed as the verifier keys it, finds citizen i's library number."""
    _, engine = built
    with Session(engine) as s:
        for i in (0, 1, IDS - 1):
            key = card_key(
                scale_data.CARD_KEY_SECRET, scale_data.ISSUER_DER, scale_data.card_serial(i)
            )
            mykey = identity.links(s, scale_data.mykey_id(i))
            assert len(mykey) == 1 + i % 2
            link, provider = mykey[0]
            found = identity.lookup(s, key, provider)
            assert found.customer_number == link.customer_number == f"2{i:010d}"


def test_reports_read_what_the_transfers_say(built: tuple[scale_data.Built, Engine]) -> None:
    _, engine = built
    with Session(engine) as s:
        town = s.scalar(
            select(Account.municipality_id)
            .where(Account.kind == "citizen")
            .group_by(Account.municipality_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        held = s.scalar(
            select(func.sum(Account.balance)).where(
                Account.municipality_id == town, Account.kind == "citizen"
            )
        )
        assert reports.municipality_summary(s, town).outstanding == held
        # The month of the first spend (at 1,000 IDs the year's first part is fundings).
        first = s.scalar(select(func.min(Transfer.created_at)).where(Transfer.kind == "spend"))
        assert first is not None
        day = first.astimezone(reports.JST).date().replace(day=1)
        period = (day, (day + timedelta(days=31)).replace(day=1))
        in_month = (
            Transfer.kind == "spend",
            Transfer.created_at >= datetime.combine(period[0], time(), reports.JST),
            Transfer.created_at < datetime.combine(period[1], time(), reports.JST),
        )
        busiest = s.scalar(
            select(Transfer.credit_account_id)
            .where(*in_month)
            .group_by(Transfer.credit_account_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        merchant = s.scalar(select(Merchant).where(Merchant.account_id == busiest))
        assert merchant is not None
        paid = s.scalar(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.credit_account_id == merchant.account_id, *in_month
            )
        )
        month = reports.settlement(s, merchant.id, *period, now=LATER)
        assert paid
        assert month.gross == paid
        # Per Japanese day, as PostgreSQL itself buckets them.
        jst_day = func.date(func.timezone("Asia/Tokyo", Transfer.created_at))
        per_day = dict(
            s.execute(
                select(jst_day, func.sum(Transfer.amount))
                .where(Transfer.credit_account_id == merchant.account_id, *in_month)
                .group_by(jst_day)
            ).all()
        )
        assert {d[0]: d[2] for d in month.days if d[2]} == per_day


def statements(engine: Engine) -> tuple[list[str], Any]:
    """The SQL `engine` sends from this thread (not a background flush), captured, and
    the listener (to remove)."""
    seen: list[str] = []
    me = threading.get_ident()

    def capture(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if threading.get_ident() == me:
            seen.append(sql)

    event.listen(engine, "before_cursor_execute", capture)
    return seen, capture


def test_summary_reads_system_accounts_by_kind(built: tuple[scale_data.Built, Engine]) -> None:
    """The report names the non-citizen kinds (a range of the key per kind), never
    "kind <> 'citizen'", which read every citizen row of the town."""
    _, engine = built
    seen, listener = statements(engine)
    try:
        with Session(engine) as s:
            reports.municipality_summary(s, 1)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    accounts = [q for q in seen if "FROM points_accounts" in q]
    assert accounts
    assert all("!=" not in q and "<>" not in q for q in accounts)
    assert "citizen" not in reports.SYSTEM_KINDS and "merchant" in reports.SYSTEM_KINDS


def test_a_lookup_is_one_read_and_its_count_comes_with_the_flush(
    built: tuple[scale_data.Built, Engine],
) -> None:
    """A counter tap reads the provider, the binding and the link in one query and
    writes nothing; the day's count reaches the table with the worker's flush."""
    _, engine = built
    counts.flush(engine)  # what earlier tests' lookups counted
    with Session(engine) as s:
        link, provider = identity.links(s, scale_data.mykey_id(2))[0]
        before = s.scalar(select(func.coalesce(func.sum(LookupCount.count), 0)))
    key = card_key(scale_data.CARD_KEY_SECRET, scale_data.ISSUER_DER, scale_data.card_serial(2))
    seen, listener = statements(engine)
    try:
        with Session(engine) as s:
            found, result = identity.lookup_at(s, key, provider.id)
            assert found.id == provider.id
            s.commit()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert result.customer_number == link.customer_number
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("SELECT"), seen
    counts.flush(engine)  # (or the background flush did already)
    assert counts.pending(engine) == 0
    with Session(engine) as s:
        after = s.scalar(select(func.coalesce(func.sum(LookupCount.count), 0)))
    assert after == before + 1
