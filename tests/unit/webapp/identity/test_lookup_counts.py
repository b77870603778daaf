"""Lookup counts kept in the worker and written in batches (webapp/identity/counts.py)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from webapp import db
from webapp.identity import counts, services
from webapp.identity.errors import NoLink, NotRegistered
from webapp.identity.models import LookupCount, ServiceLink
from webapp.providers.models import Provider

NOT_AFTER = datetime(2031, 3, 31, tzinfo=UTC)
KEY_A = bytes(range(32))
DAY = date(2026, 12, 7)


def rows(s: Session) -> list[tuple[int, date, int]]:
    s.expire_all()
    return sorted(s.execute(select(LookupCount.provider_id, LookupCount.day, LookupCount.count)))


@pytest.mark.parametrize("provider_read", [False, True], ids=["fresh", "provider_read"])
def test_lookup_at_is_one_query_and_writes_nothing(
    s: Session, make_provider: Any, provider_read: bool
) -> None:
    """One SELECT whether the tap's session has read the provider already (the counter's
    push: then the binding and link alone) or not (the provider is read with them)."""
    provider = make_provider()
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    services.link(s, mykey.id, provider, "12345", 1)
    s.expunge_all()  # the provider is read again, as a fresh request's session would
    # (kept referenced, as the push holds it: the identity map holds objects weakly)
    held = s.get(Provider, provider.id) if provider_read else None
    seen: list[str] = []

    me = threading.get_ident()

    def listen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == me:  # not the background flush
            seen.append(statement)

    engine = db.engine()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        found, result = services.lookup_at(s, KEY_A, provider.id, today=DAY)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert found.id == provider.id and result.customer_number == "12345"
    assert result.verification == "unverified" and not result.terms_outdated
    assert len(seen) == 1 and seen[0].lstrip().startswith("SELECT"), seen
    assert ("providers" in seen[0]) is not provider_read
    assert held is None or found is held
    counts.flush(s)  # (or the background flush did already)
    assert rows(s) == [(provider.id, DAY, 1)] and counts.pending(engine) == 0


@pytest.mark.parametrize("provider_read", [False, True], ids=["fresh", "provider_read"])
def test_lookup_at_refuses_as_lookup_does(
    s: Session, make_provider: Any, provider_read: bool
) -> None:
    provider = make_provider()
    provider_id = provider.id

    def looked_up(key: bytes, at: int, **kw: Any) -> Any:
        s.expunge_all()
        held = s.get(Provider, provider_id) if provider_read else None
        found = services.lookup_at(s, key, at, **kw)
        assert held is None or found[0] is held
        return found

    with pytest.raises(NotRegistered):
        looked_up(KEY_A, provider_id)
    mykey, _ = services.open_or_create(s, KEY_A, NOT_AFTER)
    with pytest.raises(NoLink):
        looked_up(KEY_A, provider_id)
    with pytest.raises(services.UnknownProvider):
        looked_up(KEY_A, provider_id + 99)

    def refuse(_p: Any) -> None:
        raise PermissionError

    services.link(s, mykey.id, s.get(Provider, provider_id), "12345", 1)
    with pytest.raises(PermissionError):
        looked_up(KEY_A, provider_id, before=refuse)
    assert counts.flush(s) == 0 and rows(s) == []
    # A link the session holds unwritten is found (written first), and terms changed
    # since the link was accepted say so.
    other = make_provider()
    s.add(
        ServiceLink(mykey_id=mykey.id, provider_id=other.id, customer_number="777",
                    accepted_terms_version=other.terms_version - 1)
    )  # fmt: skip
    _, result = services.lookup_at(s, KEY_A, other.id)
    assert result.customer_number == "777" and result.terms_outdated


def test_flushes_add_to_the_table_from_many_threads(s: Session, make_provider: Any) -> None:
    """Workers (threads here) count at once; each flush adds to what the table holds."""
    p1, p2 = make_provider(), make_provider()
    counts.add(s, p1.id, DAY, 2)
    counts.flush(s)

    def tap() -> None:
        for _ in range(200):
            counts.add(s, p1.id, DAY)
            counts.add(s, p2.id, DAY)

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(5):
        counts.flush(s)  # while they count
    for t in threads:
        t.join()
    counts.flush(s)
    assert rows(s) == [(p1.id, DAY, 802), (p2.id, DAY, 800)]


def test_a_deleted_provider_takes_its_counts(s: Session, make_provider: Any) -> None:
    kept, gone = make_provider(), make_provider()
    counts.add(s, kept.id, DAY)
    counts.add(s, gone.id, DAY, 3)
    s.delete(gone)
    s.commit()
    counts.flush(s)  # the deleted provider's are dropped
    assert rows(s) == [(kept.id, DAY, 1)] and counts.pending(db.engine()) == 0


def test_a_failed_flush_keeps_the_counts(s: Session, make_provider: Any, monkeypatch: Any) -> None:
    provider = make_provider()
    counts.add(s, provider.id, DAY, 4)
    engine = db.engine()

    def down(*_: Any, **__: Any) -> Any:
        raise ConnectionError("database away")

    monkeypatch.setattr(engine, "begin", down)
    counts.flush(s)
    assert counts.pending(engine) == 4 and rows(s) == []
    monkeypatch.undo()
    counts.flush(s)
    assert rows(s) == [(provider.id, DAY, 4)]


def test_the_background_flush_writes_within_the_interval(
    s: Session, make_provider: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(counts, "FLUSH_SECONDS", 0.05)
    monkeypatch.setattr(counts, "_flusher_pid", None)  # a flusher of this test's pace
    provider = make_provider()
    counts.add(s, provider.id, DAY)
    for _ in range(100):
        if rows(s):
            break
        threading.Event().wait(0.05)
    assert rows(s) == [(provider.id, DAY, 1)]
