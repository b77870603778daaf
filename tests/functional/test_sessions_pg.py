"""Server-side sessions on PostgreSQL: what SQLite's single writer cannot show.

- A request whose save waits on a row lock while its session is being ended (sign-out on
  another worker) finds the row gone once the lock is released: its UPDATE, or its
  rotation to a fresh token, re-creates nothing.
- Concurrent clean-ups skip rows another transaction holds (SKIP LOCKED) instead of
  queueing behind it.
- Two workers (two apps) on one database: a sign-out on one ends the session on the other.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, text

from tests.support.forms import csrf_token
from tests.support.postgres import PG_URL, server_engine
from webapp import create_app, db
from webapp.sessions import services
from webapp.sessions.models import SessionKind, WebSession
from webapp.staff import services as staff_services
from webapp.staff.models import Role

PASSWORD = "correct horse battery"
WAIT = 10.0  # seconds a blocked statement may take to show it is blocked or done


def schema_url(schema: str) -> str:
    """PG_URL with every connection's search path on `schema`."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@dataclass
class Workers:
    """Two apps (two workers) on one PostgreSQL schema, and a connection of the test's."""

    first: Flask
    second: Flask
    server: Engine
    schema: str

    def rows(self) -> list[WebSession]:
        with self.first.extensions["db_sessionmaker"]() as s:
            return list(s.scalars(select(WebSession)))


def _app(url: str) -> Flask:
    return create_app(
        {"DATABASE_URL": url, "SECRET_KEY": "t", "TESTING": True, "BUS_URL": "memory://"}
    )


@pytest.fixture
def workers() -> Iterator[Workers]:
    with server_engine() as server:
        schema = f"sessions_t_{uuid.uuid4().hex[:12]}"
        with server.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        first, second = _app(schema_url(schema)), _app(schema_url(schema))
        try:
            db.create_all(first)
            with first.app_context(), db.new_session() as s:
                staff_services.create_staff(s, "root", PASSWORD, Role.PLATFORM_ADMIN)
            yield Workers(first, second, server, schema)
        finally:
            for app in (first, second):
                app.extensions["db_engine"].dispose()
            with server.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def sign_in(client: FlaskClient) -> str:
    """Sign in as root; the session cookie's token."""
    page = client.get("/staff/login").get_data(as_text=True)
    client.post(
        "/staff/login",
        data={"login": "root", "password": PASSWORD, "csrf_token": csrf_token(page)},
    )
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_sign_out_on_one_worker_ends_the_session_on_the_other(workers: Workers) -> None:
    browser = workers.first.test_client()
    token = sign_in(browser)
    elsewhere = workers.second.test_client()
    elsewhere.set_cookie("session", token)
    assert elsewhere.get("/staff/").status_code == 200
    html = browser.get("/staff/").get_data(as_text=True)
    assert browser.post("/staff/logout", data={"csrf_token": csrf_token(html)}).status_code == 302
    assert elsewhere.get("/staff/").status_code == 302
    assert all(row.kind == SessionKind.ANONYMOUS for row in workers.rows())


def _save_in_thread(app: Flask, token: str, change: Any) -> tuple[threading.Thread, list[Any]]:
    """A request of `token`'s browser, opened now, whose save runs in a thread."""
    outcome: list[Any] = []
    context = app.test_request_context("/staff/", headers={"Cookie": f"session={token}"})
    context.push()
    current = session._get_current_object()  # type: ignore[attr-defined]
    assert current["staff_id"]
    change(current)
    context.pop()

    def save() -> None:
        with app.test_request_context("/staff/"):
            response = app.response_class()
            try:
                app.session_interface.save_session(app, current, response)
            except Exception as exc:  # pragma: no cover - reported by the test
                outcome.append(exc)
            outcome.append(response)

    return threading.Thread(target=save), outcome


def _blocked_on_lock(server: Engine, schema: str) -> bool:
    """Whether some backend in `schema`'s tests waits on a lock right now."""
    with server.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE '%web_sessions%'"
            )
        ).scalar()
    return bool(waiting)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.__setitem__("lang", "en"), id="an UPDATE of the data"),
        pytest.param(lambda s: s.clear() or s.__setitem__("lang", "en"), id="a new token"),
    ],
)
def test_a_save_waiting_on_the_sign_out_re_creates_nothing(workers: Workers, change: Any) -> None:
    token = sign_in(workers.first.test_client())
    key = services.key_of(token)
    thread, outcome = _save_in_thread(workers.second, token, change)
    ending = workers.server.connect()
    transaction = ending.begin()
    ending.execute(text(f'SET LOCAL search_path TO "{workers.schema}"'))
    deleted = ending.execute(text("DELETE FROM web_sessions WHERE key = :k"), {"k": key})
    assert deleted.rowcount == 1  # the sign-out holds the row until it commits
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=WAIT)
    while not _blocked_on_lock(workers.server, workers.schema):
        assert datetime.now(UTC) < deadline, "the save never waited on the sign-out"
        time.sleep(0.01)
    transaction.commit()
    ending.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    [response] = outcome
    assert "Set-Cookie" not in response.headers
    assert workers.rows() == []


def test_concurrent_cleanups_skip_rows_another_holds(workers: Workers) -> None:
    now = datetime.now(UTC)
    with workers.first.extensions["db_sessionmaker"]() as s:
        for i in range(6):
            s.add(
                WebSession(
                    key=f"{i:064x}",
                    kind=SessionKind.ANONYMOUS,
                    data="{}",
                    created_at=now - timedelta(hours=3),
                    last_seen_at=now - timedelta(hours=3),
                    expires_at=now + timedelta(hours=21),
                    idle_seconds=7200,
                    ends_at=now - timedelta(hours=1),
                )
            )
        s.commit()
    holder = workers.server.connect()
    transaction = holder.begin()
    holder.execute(text(f'SET LOCAL search_path TO "{workers.schema}"'))
    held = holder.execute(
        text("SELECT key FROM web_sessions ORDER BY key LIMIT 3 FOR UPDATE")
    ).scalars()
    held_keys = set(held)
    try:
        with workers.first.extensions["db_sessionmaker"]() as s:
            s.execute(text("SET lock_timeout = '5s'"))  # a wait would fail, not hang
            done = services.delete_expired(s, workers.first.extensions["bus"], now, limit=10)
        assert set(done.keys) == {f"{i:064x}" for i in range(6)} - held_keys
    finally:
        transaction.rollback()
        holder.close()
    assert {row.key for row in workers.rows()} == held_keys
