"""Privacy you can test: after the counter flows ran, the database holds no raw
certificate, no certificate serial, no My Number and no per-person lookup history.

Every table and every column is read back (and the SQLite file itself, free pages and
write-ahead log included, is searched byte by byte), for every demo card the flows used:
certificate DER as bytes, base64, base64url and hex; serial as decimal, hex and bytes; the
card's My Number. Lookups must leave only the per-provider, per-day count.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from bridge.vcard.jlis import DemoJLIS
from tests.fixtures.counter import PIN, CardMade, Counter, RecordingKeyboard, make_counter
from tests.fixtures.privacy import scan, scan_files
from tests.support.flows import complete
from webapp import db
from webapp.identity import counts
from webapp.providers.models import Provider


@pytest.fixture
def counter(private_jlis: DemoJLIS, tmp_path: Path) -> Iterator[Counter]:
    yield from make_counter(private_jlis, tmp_path, RecordingKeyboard())


def _table_sizes(counter: Counter) -> dict[str, int]:
    with counter.platform.app.app_context():
        engine = db.engine()
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one())  # noqa: S608
                for t in inspect(engine).get_table_names()
            }


def _pin(counter: Counter, started: Any) -> dict[str, Any]:
    assert started.status_code == 200, started.get_json()
    done = complete(counter.client, started.get_json()["pin"], PIN)
    assert done.status_code == 200, done.get_json()
    body: dict[str, Any] = done.get_json()["result"]
    return body


def run_flows(counter: Counter) -> list[CardMade]:
    """Every counter flow, with several cards (lookups A/B/C, PIN, link, refusals)."""
    alice, bob, carol = counter.card("alice"), counter.card("bob"), counter.card("carol")
    counter.register(alice, "20240001")
    counter.register(bob)
    for mode in ("A", "B", "C"):
        counter.configure(mode=mode, symbology="code128")
        counter.insert(alice)
        assert counter.pushed()["result"]["mode"] == mode
    counter.insert(carol)
    assert counter.pushed()["error"]["code"] == "not_registered"
    counter.insert(bob)
    assert counter.pushed()["error"]["code"] == "no_link"
    started = counter.begin("counter_link", number="20240002", terms_accepted=True)
    assert _pin(counter, started)["linked"]
    counter.configure(mode="A", pin_required=True)
    counter.insert(alice)
    assert _pin(counter, counter.begin("counter_lookup"))["presentation"]["number"]
    return [alice, bob, carol]


def test_no_card_identifier_or_my_number_at_rest(counter: Counter) -> None:
    cards = [card.issued for card in run_flows(counter)]
    assert scan(db_engine(counter), cards) == []
    counter.platform.stop()  # flush and close before reading the files themselves
    files = [p for p in counter.tmp.glob("platform.db*") if p.is_file()]
    assert files
    assert scan_files(files, cards) == []


def test_the_scan_finds_what_it_looks_for(counter: Counter) -> None:
    card = counter.card("planted")
    with counter.platform.app.app_context(), db.new_session() as s:
        provider = s.get(Provider, counter.provider_id)
        assert provider is not None
        provider.terms_en = base64.b64encode(card.issued.auth_cert_der).decode()
        provider.terms_ja = f"番号 {card.issued.my_number}"
        s.commit()
    found = {column for _, column, _ in scan(db_engine(counter), [card.issued])}
    assert found == {"terms_en", "terms_ja"}


def test_lookups_leave_only_a_daily_count(counter: Counter) -> None:
    alice, bob = counter.card("alice"), counter.card("bob")
    counter.register(alice, "20240001")
    counter.register(bob, "20240002")
    before = _table_sizes(counter)
    for card in (alice, bob, alice, alice, bob):
        counter.insert(card)
        assert "result" in counter.pushed()
    counts.flush()  # the workers' lookup counts, written as every FLUSH_SECONDS
    after = _table_sizes(counter)
    changed = {t for t in after if after[t] != before.get(t)}
    assert changed <= {"lookup_counts", "bridge_devices"}, changed
    with counter.platform.app.app_context(), db.new_session() as s:
        from webapp.identity.models import LookupCount

        rows = list(s.scalars(select(LookupCount)))
    assert [r.count for r in rows] == [5]  # one row: the provider's day, no person in it
    columns = {c["name"] for c in inspect(db_engine(counter)).get_columns("lookup_counts")}
    assert columns == {"provider_id", "day", "count"}


def db_engine(counter: Counter) -> Any:
    with counter.platform.app.app_context():
        return db.engine()
