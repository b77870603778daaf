"""The store: an opaque cookie, rows only when there is data, rotation, timeouts on an
injected clock, no resurrection of an ended session, and the cookie's attributes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import pytest
from flask import session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import event, select

from tests.support.forms import csrf_token
from tests.unit.webapp.sessions.conftest import (
    Site,
    cookie_of,
    ended_keys,
    open_kiosk,
    sign_in,
    token_of,
)
from webapp.sessions import (
    ServerSession,
    current_session_key,
    end_current_session,
    services,
    session_active,
)
from webapp.sessions.models import SessionKind, WebSession
from webapp.sessions.store import MAX_DATA_CHARS, SessionTooLarge

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@contextmanager
def statements(site: Site) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = site.app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sessions_sql(seen: list[str]) -> list[str]:
    return [sql for sql in seen if "web_sessions" in sql]


# --- rows only for data ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["/healthz", "/home/status", "/no/such/page", "/staff/"])
def test_a_request_with_nothing_to_keep_makes_no_row_and_no_cookie(site: Site, url: str) -> None:
    browser = site.browser()
    response = browser.get(url)
    assert "Set-Cookie" not in response.headers, url
    assert site.rows() == []


def test_the_language_choice_is_kept_and_sticks(site: Site) -> None:
    browser = site.browser(accept_language="ja")
    assert "Staff sign-in" in browser.get("/staff/login?lang=en").get_data(as_text=True)
    [row] = site.rows()
    assert row.kind == SessionKind.ANONYMOUS and row.user_agent is None
    assert row.key == hashlib.sha256(cookie_of(browser).encode()).hexdigest()  # type: ignore[union-attr]
    again = browser.get("/staff/login")
    assert "Staff sign-in" in again.get_data(as_text=True)
    assert "Set-Cookie" not in again.headers  # same token: nothing to send


def test_static_files_and_the_bridge_socket_never_open_the_store(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "root")
    browser.get("/staff/")  # the page's CSRF token is kept: one write, then only reads
    with statements(site) as seen:
        with browser.get("/static/css/app.css") as static:
            assert static.status_code == 200 and "Set-Cookie" not in static.headers
        browser.get("/ws/bridge")  # not a WebSocket upgrade: refused, but no session read
    assert sessions_sql(seen) == []
    with statements(site) as seen:
        browser.get("/staff/")
    [read] = sessions_sql(seen)  # one point read by primary key, nothing else
    assert read.lstrip().upper().startswith("SELECT") and 'WHERE web_sessions."key" = ' in read


# --- the cookie -----------------------------------------------------------------------


def _decodings(value: str) -> list[bytes]:
    """The cookie's value and everything it decodes to, every way we can think of."""
    found = [value.encode()]
    for text in (value, value.split(".")[0], value.lstrip(".")):
        padded = text + "=" * (-len(text) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            with suppress(binascii.Error, ValueError):
                found.append(decode(padded))
    for raw in list(found):
        with suppress(zlib.error):
            found.append(zlib.decompress(raw))
    return found


def test_the_cookie_is_an_opaque_token(site: Site) -> None:
    browser = site.browser()
    browser.get("/staff/login?lang=en")
    sign_in(browser, "clerk")
    value = cookie_of(browser)
    assert value is not None and len(value) == 43
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(value + "=")) == 32  # 256 random bits, nothing else
    staff_id = site.staff("clerk").id
    for raw in _decodings(value):
        for secret in (b"staff", b"lang", b"csrf", b"terminal", b'"en"', b"clerk"):
            assert secret not in raw
        with pytest.raises(ValueError):
            json.loads(raw)
    flask_cookies = SecureCookieSessionInterface().get_signing_serializer(site.app)
    assert flask_cookies is not None
    with pytest.raises(BadSignature):
        flask_cookies.loads(value)
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("test").loads(value)
    # What the cookie stands for lives on the server only, under the token's hash.
    [row] = site.rows()
    assert row.key == hashlib.sha256(value.encode()).hexdigest() and value not in row.key
    assert json.loads(row.data)["staff_id"] == staff_id


def test_an_old_signed_cookie_opens_nothing_and_is_removed(site: Site) -> None:
    forged = SecureCookieSessionInterface().get_signing_serializer(site.app)
    assert forged is not None
    browser = site.browser()
    browser.set_cookie("session", forged.dumps({"staff_id": site.staff("root").id}))
    response = browser.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert cookie_of(browser) is None


def test_staff_cookies_end_with_the_browser_kiosk_cookies_persist(site: Site) -> None:
    staff = site.browser()
    signed = sign_in(staff, "root")
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "Expires" not in cookie and "Secure" not in cookie
    kiosk = site.browser()
    sign_in(kiosk, "root")
    opened = kiosk.post(f"/kiosk/open/{site.kiosk}", data={"csrf_token": token_of(kiosk)})
    cookie = opened.headers["Set-Cookie"]
    assert f"Max-Age={90 * 24 * 3600}" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    # The kiosk's later requests send no cookie: its Max-Age stands from the binding.
    assert "Set-Cookie" not in kiosk.get("/kiosk/").headers
    assert "Set-Cookie" not in kiosk.get("/terminal/status").headers


# --- rotation -------------------------------------------------------------------------


def test_signing_in_gives_a_fresh_token_and_deletes_the_old_row(site: Site) -> None:
    browser = site.browser()
    browser.get("/staff/login?lang=en")
    before = cookie_of(browser)
    sign_in(browser, "clerk")
    after = cookie_of(browser)
    assert before and after and before != after
    [row] = site.rows()
    assert row.key == services.key_of(after) and row.kind == SessionKind.STAFF
    assert json.loads(row.data)["lang"] == "en"
    assert ended_keys(site, 1) == [services.key_of(before)]
    # The token from before sign-in (a fixation attempt) opens nothing.
    thief = site.browser()
    thief.set_cookie("session", before)
    assert thief.get("/staff/").status_code == 302


def test_opening_a_kiosk_makes_a_kiosk_row_under_a_new_token(site: Site) -> None:
    admin = site.browser(user_agent=CHROME)
    sign_in(admin, "libadmin")
    staff_cookie = cookie_of(admin)
    opened = admin.post(f"/kiosk/open/{site.kiosk}", data={"csrf_token": token_of(admin)})
    assert opened.status_code == 302
    assert cookie_of(admin) != staff_cookie
    [row] = site.rows()
    assert (row.kind, row.terminal_id, row.staff_id) == (SessionKind.KIOSK, site.kiosk, None)
    assert row.user_agent == "Chrome 131 on Windows"
    assert row.expires_at - row.created_at == timedelta(days=90)
    assert row.ends_at - row.created_at == timedelta(days=7)
    stale = site.browser()
    stale.set_cookie("session", staff_cookie or "")
    assert stale.get("/admin/terminals/").status_code == 302


def test_a_home_binding_keeps_no_browser_summary(site: Site) -> None:
    citizen = site.browser(user_agent=CHROME)
    page = citizen.get("/home/").get_data(as_text=True)
    assert citizen.post("/home/terminal", data={"csrf_token": csrf_token(page)}).status_code == 302
    [row] = site.rows()
    assert row.kind == SessionKind.HOME and row.user_agent is None
    assert row.expires_at - row.created_at == timedelta(days=365)
    assert row.ends_at - row.created_at == timedelta(days=30)


# --- timeouts -------------------------------------------------------------------------


def test_last_seen_moves_at_most_once_a_minute(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "clerk")
    browser.get("/staff/")  # the page's CSRF token is kept: one write, then only reads
    start = site.clock.now
    for _ in range(5):
        site.clock.advance(seconds=10)
        with statements(site) as seen:
            assert browser.get("/staff/").status_code == 200
        assert [s for s in sessions_sql(seen) if s.startswith("UPDATE")] == []
    [row] = site.rows()
    assert row.last_seen_at == start
    site.clock.advance(seconds=10)  # a minute since sign-in
    browser.get("/staff/")
    [row] = site.rows()
    assert row.last_seen_at == site.clock.now
    assert row.ends_at == site.clock.now + timedelta(hours=8)


def test_staff_idle_timeout(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "clerk")
    site.clock.advance(hours=7, minutes=59)
    assert browser.get("/staff/").status_code == 200
    site.clock.advance(hours=8, seconds=1)
    response = browser.get("/staff/")
    assert response.status_code == 302 and "/staff/login" in response.headers["Location"]
    assert site.rows() == [] or all(r.kind == SessionKind.ANONYMOUS for r in site.rows())
    assert cookie_of(browser) is None


def test_staff_absolute_lifetime_even_when_busy(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "clerk")
    for _ in range(15):  # busy all day, never idle
        site.clock.advance(hours=1)
        assert browser.get("/staff/").status_code == 200
    site.clock.advance(minutes=59)
    assert browser.get("/staff/").status_code == 200
    site.clock.advance(minutes=2)  # 16 hours and a minute since sign-in
    assert browser.get("/staff/").status_code == 302
    assert all(r.kind != SessionKind.STAFF for r in site.rows())


def test_kiosk_idle_and_absolute_lifetimes(site: Site) -> None:
    kiosk = open_kiosk(site, site.kiosk)
    site.clock.advance(days=6, hours=23)
    assert kiosk.get("/terminal/status").status_code == 200
    for _ in range(13):  # used every six days: the idle end moves on
        site.clock.advance(days=6)
        assert kiosk.get("/kiosk/").status_code == 200
    site.clock.advance(days=5)  # 89 days 23 hours since the binding
    assert kiosk.get("/kiosk/").status_code == 200
    site.clock.advance(hours=2)  # seen two hours ago, but bound 90 days ago
    assert kiosk.get("/kiosk/").status_code == 302
    idle = open_kiosk(site, site.kiosk)
    site.clock.advance(days=7, seconds=1)
    assert idle.get("/terminal/status").status_code == 401


def test_anonymous_sessions_end_after_two_hours_idle(site: Site) -> None:
    browser = site.browser(accept_language="ja")
    browser.get("/staff/login?lang=en")
    site.clock.advance(hours=1, minutes=59)
    assert "Staff sign-in" in browser.get("/staff/login").get_data(as_text=True)
    site.clock.advance(hours=2, seconds=1)
    assert "職員サインイン" in browser.get("/staff/login").get_data(as_text=True)


def test_an_ended_session_is_deleted_when_it_comes_back(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "clerk")
    key = services.key_of(cookie_of(browser) or "")
    site.clock.advance(hours=9)
    assert browser.get("/staff/").status_code == 302
    with site.db() as s:
        assert s.get(WebSession, key) is None
    assert key in ended_keys(site, 2)


# --- no resurrection ------------------------------------------------------------------


def _request_started_before_the_end(site: Site, change: Any) -> None:
    """A request of a signed-in browser opens its session, the session is ended by another
    request, then the first one changes its session (`change`) and saves it."""
    browser = site.browser()
    sign_in(browser, "clerk")
    token = cookie_of(browser) or ""
    app = site.app
    with app.test_request_context("/staff/", headers={"Cookie": f"session={token}"}):
        assert session["staff_id"] == site.staff("clerk").id
        other = site.browser()
        other.set_cookie("session", token)
        signed_out = other.post("/staff/logout", data={"csrf_token": token_of(other)})
        assert signed_out.status_code == 302
        assert site.rows() == [] or all(r.kind == SessionKind.ANONYMOUS for r in site.rows())
        change(session)
        response = app.response_class()
        app.session_interface.save_session(app, session._get_current_object(), response)  # type: ignore[attr-defined]
    assert "Set-Cookie" not in response.headers
    assert all(r.kind == SessionKind.ANONYMOUS for r in site.rows())
    assert not session_active(app, services.key_of(token))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.__setitem__("lang", "en"), id="data changed: an UPDATE"),
        pytest.param(lambda s: None, id="nothing changed: a touch"),
        pytest.param(lambda s: (s.clear(), s.__setitem__("staff_id", 1)), id="a new token"),
    ],
)
def test_a_request_from_before_sign_out_does_not_bring_the_session_back(
    site: Site, change: Any
) -> None:
    site.clock.advance(minutes=5)  # a touch is due too
    _request_started_before_the_end(site, change)


# --- helpers for the card-flow code ---------------------------------------------------


def test_current_session_key_and_session_active(site: Site) -> None:
    browser = site.browser()
    sign_in(browser, "clerk")
    token = cookie_of(browser) or ""
    key = services.key_of(token)
    with site.app.test_request_context("/", headers={"Cookie": f"session={token}"}):
        assert current_session_key() == key
        with site.db() as s:
            assert session_active(s, key)
    assert session_active(site.app, key)
    with site.app.test_request_context("/"):
        assert current_session_key() is None  # no data, no session
        session["lang"] = "en"
        drawn = current_session_key()
        assert drawn is not None and not session_active(site.app, drawn)
        end_current_session()
        assert current_session_key() is None
    browser.post("/staff/logout", data={"csrf_token": token_of(browser)})
    assert not session_active(site.app, key)
    assert current_session_key() is None  # outside a request


def test_session_data_is_bounded(site: Site) -> None:
    with site.app.test_request_context("/"):
        current = session._get_current_object()  # type: ignore[attr-defined]
        assert isinstance(current, ServerSession)
        current["blob"] = "x" * MAX_DATA_CHARS
        with pytest.raises(SessionTooLarge):
            site.app.session_interface.save_session(site.app, current, site.app.response_class())
    assert site.rows() == []


def test_the_table_has_the_indexes_the_listing_and_clean_up_use(site: Site) -> None:
    indexed = {tuple(c.name for c in ix.columns) for ix in WebSession.__table__.indexes}
    assert {("ends_at",), ("last_seen_at",), ("kind", "last_seen_at")} <= indexed
    assert {("staff_id",), ("terminal_id",)} <= indexed
    with site.db() as s:
        assert s.scalar(select(WebSession.key)) is None
