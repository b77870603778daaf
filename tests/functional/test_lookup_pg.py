"""A counter tap's lookup on PostgreSQL (webapp.identity.services.lookup_at): with the
provider read by the tap, the binding and link are one prepared statement on a lane
connection (webapp.pglane), and the answers are the ones the session path gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, exc

from tests.support.postgres import scratch_app, server_engine, terminate
from webapp import db, pglane
from webapp.identity import services as identity
from webapp.identity.errors import NoLink, NotRegistered
from webapp.identity.models import Verification
from webapp.providers.models import Provider

NOT_AFTER = datetime(2035, 1, 1, tzinfo=UTC)
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def app() -> Iterator[Flask]:
    with scratch_app() as app:
        yield app


@pytest.fixture
def provider_id(app: Flask) -> int:
    """A library where KEY's MyKey ID holds number 12345 (library-verified, terms v1);
    OTHER_KEY has a MyKey ID and no link there."""
    with app.app_context(), db.new_session() as s:
        provider = Provider(code="JP-LANE", kind="library", name_ja="レーン図書館")
        s.add(provider)
        s.commit()
        mykey, _ = identity.open_or_create(s, KEY, NOT_AFTER)
        identity.link(s, mykey.id, provider, "12345", 1, Verification.LIBRARY)
        identity.open_or_create(s, OTHER_KEY, NOT_AFTER)
        s.commit()
        return provider.id


def _session_statements(app: Flask) -> tuple[list[str], Any]:
    seen: list[str] = []

    def listen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", listen)
    return seen, lambda: event.remove(engine, "before_cursor_execute", listen)


def test_a_tap_reads_its_link_on_the_lane_with_the_session_s_answers(
    app: Flask, provider_id: int
) -> None:
    with app.app_context(), db.new_session() as s:
        held = s.get(Provider, provider_id)  # the tap's read (counter.push)
        lane = pglane.lane(app.extensions["db_engine"])
        assert lane is not None
        seen, stop = _session_statements(app)
        try:
            for _ in range(3):  # prepared at the first, reused after
                found, result = identity.lookup_at(s, KEY, provider_id)
        finally:
            stop()
        assert found is held
        assert result.customer_number == "12345" and result.verified
        assert result.verification == Verification.LIBRARY and not result.terms_outdated
        assert seen == []  # nothing on the session's connection: the lane answered
        assert lane.idle and all(raw.prepared for raw in lane.idle)
        with pytest.raises(NoLink):
            identity.lookup_at(s, OTHER_KEY, provider_id)
        with pytest.raises(NotRegistered):
            identity.lookup_at(s, b"\xff" * 32, provider_id)
        # The same answers on the session's own connection (a session holding changes).
        held.terms_version = 2  # (not written: a change the session holds)
        _, on_session = identity.lookup_at(s, KEY, provider_id)
        assert on_session.customer_number == "12345" and on_session.terms_outdated
        s.rollback()


def test_with_every_lane_connection_busy_the_session_answers(app: Flask, provider_id: int) -> None:
    lane = pglane.lane(app.extensions["db_engine"])
    assert lane is not None
    taken = []
    while (raw := lane.get()) is not None:
        taken.append(raw)
    try:
        with app.app_context(), db.new_session() as s:
            s.get(Provider, provider_id)
            seen, stop = _session_statements(app)
            try:
                _, result = identity.lookup_at(s, KEY, provider_id)
            finally:
                stop()
            assert result.customer_number == "12345"
            assert len(seen) == 1 and "card_bindings" in seen[0]
    finally:
        for raw in taken:
            lane.put(raw, True)


def test_after_a_server_restart_one_lost_connection_replaces_the_lane_s_older_ones(
    app: Flask, provider_id: int
) -> None:
    """A restart drops every connection, but each sat idle for less than
    IDLE_PING_SECONDS, so none is pinged: the first statement that meets a dead one fails
    (and the pool marks its older connections dead); the tap's lookup after it opens a
    fresh lane connection instead of failing on its own dead one (a counter tap's "try
    again" after every database restart, once per worker: a CI failure)."""
    engine = app.extensions["db_engine"]
    with app.app_context(), db.new_session() as s:
        held = s.get(Provider, provider_id)  # the tap's read (kept: a weak identity map)
        identity.lookup_at(s, KEY, provider_id)  # a lane connection, idle now
        lane = pglane.lane(engine)
        assert lane is not None and len(lane.idle) == 1
        old = lane.idle[0].dbapi
        pooled = s.connection().connection.dbapi_connection
        s.rollback()  # back to the pool, idle moments ago
    with server_engine() as admin:  # the restart, as the backends see it
        for pid in (old.info.backend_pid, pooled.info.backend_pid):
            terminate(admin, pid)
    with app.app_context(), db.new_session() as s:
        with pytest.raises(exc.OperationalError) as lost:
            s.get(Provider, provider_id)  # the pooled one: not pinged, fails
        assert lost.value.connection_invalidated
        s.rollback()
        held = s.get(Provider, provider_id)  # a new pooled connection
        _, result = identity.lookup_at(s, KEY, provider_id)  # and a new lane connection
    assert result.customer_number == "12345" and held is not None
    assert old.closed and lane.idle and lane.idle[0].dbapi is not old


def test_a_failed_ping_replaces_the_lane_s_older_connections_too(
    app: Flask, provider_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same after a longer pause: the pooled connection's ping fails at checkout (the
    request is served on a new one) and the lane's connection of that age is replaced,
    not used for the tap's lookup."""
    engine = app.extensions["db_engine"]
    with app.app_context(), db.new_session() as s:
        held = s.get(Provider, provider_id)  # the tap's read (kept: a weak identity map)
        identity.lookup_at(s, KEY, provider_id)
        lane = pglane.lane(engine)
        assert lane is not None
        old = lane.idle[0].dbapi
        pooled = s.connection().connection.dbapi_connection
        s.rollback()
    with server_engine() as admin:
        for pid in (old.info.backend_pid, pooled.info.backend_pid):
            terminate(admin, pid)
    pinged: list[Any] = []
    real_ping = engine.dialect.do_ping
    # A long pause: the pool pings, and the lane would ping its own connection too, had
    # the pool's invalidation not replaced it first.
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: (pinged.append(c), real_ping(c)))
    with app.app_context(), db.new_session() as s:
        held = s.get(Provider, provider_id)  # the ping fails; served on a new connection
        _, result = identity.lookup_at(s, KEY, provider_id)
    assert result.customer_number == "12345" and held is not None
    assert pinged == [pooled]  # the lane's old connection was replaced, not pinged
    assert old.closed
