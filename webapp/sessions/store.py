"""Flask's `session` kept in the database; the cookie holds only an opaque token.

`DatabaseSessionInterface` is the app's `session_interface`: views keep using
`flask.session` as a dict. The cookie is 256 random bits (`services.new_token`); the row
is keyed by the token's SHA-256 (`models.WebSession`). Per request: no cookie, no read;
with a cookie, one read by primary key when the request starts (none for static files
and the bridges' WebSocket); at the end, a write only when something changed:

- data changed: an UPDATE of the existing row, never an insert. A request that started
  before its session was ended (signed out, revoked, expired) finds no row and writes
  nothing: a session, once ended, stays ended.
- a new identity (a session's first data, `session.clear()`, or a change of kind, e.g.
  a staff member signing in, an admin opening a kiosk, a citizen binding a home
  terminal): the old row is deleted and a row with a fresh token inserted, in one
  transaction; if the old row was already gone (ended meanwhile), nothing is inserted.
  This is the only time a cookie is sent (persistent for kiosk and home sessions, with
  Max-Age = their lifetime; a browser-session cookie otherwise).
- nothing changed: last_seen_at is moved on at most once every TOUCH_EVERY.
- emptied: the row is deleted and the cookie removed.

A session past its end (idle or absolute, `policy.lifetimes`) is treated as none and its
row deleted. Why not Flask-Session: it keeps opaque blobs by session id only, so
neither "every session of this staff member" nor "every session bound to this terminal"
can be found, listed or ended, and it stores the id itself rather than its hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, request
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import CallbackDict

from ..bus import get_bus
from ..terminals.models import utcnow
from . import policy, services
from .models import SessionKind, WebSession

# Tokens are 43 URL-safe characters (32 bytes); anything else in the cookie is not ours
# (an old signed cookie, a forgery) and is ignored without a read.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# The signed cookie this replaces had to fit a browser's 4,096 bytes per cookie after
# zlib and base64, so nothing kept today comes near; 8 KiB of JSON leaves room for the
# card-flow state and bounds a row: a million live sessions hold at most ~8 GB of data.
MAX_DATA_CHARS = 8 * 1024
# last_seen_at (and with it the idle end) moves on at most this often: a tab polling every
# few seconds costs one write a minute, and idle timeouts are exact to within a minute.
TOUCH_EVERY = timedelta(minutes=1)
# Each new session also deletes up to this many ended ones: sessions are made about as
# fast as they end, so the table stays bounded even without `flask sessions cleanup`.
SWEEP_ON_CREATE = 10

Clock = Callable[[], datetime]
_tags = TaggedJSONSerializer()


class SessionTooLarge(ValueError):
    """The session's data is over MAX_DATA_CHARS: our own code keeps too much in it."""


def dump(data: dict[str, Any]) -> str:
    """The session data as stored (Flask's tagged JSON, keys sorted); SessionTooLarge."""
    text = json.dumps(_tags.tag(data), separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_DATA_CHARS:
        raise SessionTooLarge(f"session data of {len(text)} characters > {MAX_DATA_CHARS}")
    return text


def load(text: str) -> dict[str, Any]:
    """The session data of a row."""
    data = json.loads(text, object_hook=_tags.untag)
    if not isinstance(data, dict):
        raise ValueError("session data is not an object")
    return data


@dataclass(frozen=True)
class LoadedRow:
    """What the request read of its session's row."""

    key: str
    kind: str
    data: str
    last_seen_at: datetime
    expires_at: datetime
    idle_seconds: int


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """`flask.session`: a dict whose row lives in the database.

    `clear()` gives the session a new identity: a fresh token at the end of the request,
    the old row deleted (no session fixation across sign-in or binding a terminal).
    """

    def __init__(
        self,
        initial: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        row: LoadedRow | None = None,
        had_cookie: bool = False,
    ) -> None:
        def on_update(self: ServerSession) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial, on_update)
        self.row = row  # the row read at the start of the request (None: none)
        self.token = token  # this identity's token; None until one is drawn
        self.fresh = row is None  # a new identity: inserted (with a new token) at the end
        self.had_cookie = had_cookie
        self.modified = False
        self.accessed = False

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser: kiosk and home sessions (their kind)."""
        return policy.kind_of(self) in SessionKind.PERSISTENT

    @permanent.setter
    def permanent(self, value: bool) -> None:
        """Accepted and ignored: the cookie's life follows the session's kind."""

    def clear(self) -> None:
        """Empty the session and give it a new identity (new token, old row deleted)."""
        super().clear()
        self.rotate()

    def rotate(self) -> None:
        """Keep the data under a new token at the end of the request; the old row goes."""
        if not self.fresh:
            self.fresh, self.token = True, None
        self.modified = True

    def forget(self) -> str | None:
        """Drop data and identity (the caller ends the row); the old row's key, if any."""
        key = self.row.key if self.row is not None else None
        super().clear()
        self.row, self.token, self.fresh = None, None, True
        return key

    def identity_key(self) -> str | None:
        """This session's key (SHA-256 hex of its token), or None for an empty new one.

        A new session with data draws its token now, so that what is keyed by it during
        this request matches the row inserted at its end.
        """
        if self.fresh and not self:
            return None
        if self.token is None:
            self.token = services.new_token()
        return services.key_of(self.token)


_ROW = select(
    WebSession.kind,
    WebSession.data,
    WebSession.last_seen_at,
    WebSession.expires_at,
    WebSession.idle_seconds,
    WebSession.ends_at,
).where(WebSession.key == bindparam("key"))


class DatabaseSessionInterface(SessionInterface):
    """Sessions in the `web_sessions` table; `clock` is injectable for tests."""

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    # --- per request --------------------------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        """The request's session: one read by primary key, only when a token came."""
        if self._skipped(app, request.path):
            return None  # Flask gives these a null session: no read, no write
        token = request.cookies.get(self.get_cookie_name(app))
        if token is None:
            return ServerSession()
        if not _TOKEN.fullmatch(token):
            return ServerSession(had_cookie=True)
        key = services.key_of(token)
        now = self.clock()
        # One read by primary key on a pooled connection, plain columns (every request
        # with a session pays it: no ORM session, no entity).
        engine: Engine = app.extensions["db_engine"]
        with engine.connect() as connection:
            row = connection.execute(_ROW, {"key": key}).first()
        if row is None:
            return ServerSession(had_cookie=True)
        kind, text, last_seen_at, expires_at, idle_seconds, ends_at = row
        try:
            data = load(text)
        except ValueError:
            data = None
        if data is None or ends_at <= now:
            with self._db(app) as s:
                services.end_sessions(s, get_bus(app), [key])
            return ServerSession(had_cookie=True)
        loaded = LoadedRow(key, kind, text, last_seen_at, expires_at, idle_seconds)
        return ServerSession(data, token=token, row=loaded, had_cookie=True)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what changed (see the module docstring) and send a cookie only when new."""
        if not isinstance(session, ServerSession):
            return
        if session.accessed:
            response.vary.add("Cookie")
        now = self.clock()
        data = dict(session)
        kind = policy.kind_of(data)
        row = session.row
        if not session.fresh and row is not None:
            if not data:
                with self._db(app) as s:
                    services.end_sessions(s, get_bus(app), [row.key])
                self._delete_cookie(app, response)
                return
            if kind != row.kind:
                session.rotate()  # a new kind is a new identity
            else:
                self._update(app, row, data, now)
                return
        self._renew(app, session, data, kind, now, response)

    # --- writes -------------------------------------------------------------------------

    def _update(self, app: Flask, row: LoadedRow, data: dict[str, Any], now: datetime) -> None:
        """UPDATE the row if the data changed or a touch is due; never re-create it."""
        text = dump(data)
        values: dict[str, Any] = {}
        if text != row.data:
            values = {
                "data": text,
                "staff_id": policy.staff_of(data),
                "terminal_id": policy.terminal_of(data),
            }
        elif now - row.last_seen_at < TOUCH_EVERY:
            return
        ends_at = min(row.expires_at, now + timedelta(seconds=row.idle_seconds))
        values.update(last_seen_at=now, ends_at=ends_at)
        with self._db(app) as s:
            s.execute(update(WebSession).where(WebSession.key == row.key).values(**values))
            s.commit()

    def _renew(
        self,
        app: Flask,
        session: ServerSession,
        data: dict[str, Any],
        kind: str,
        now: datetime,
        response: Response,
    ) -> None:
        """Insert the session under a fresh token, deleting the row it replaces."""
        old = session.row
        if not data:
            if old is not None:
                with self._db(app) as s:
                    services.end_sessions(s, get_bus(app), [old.key])
            if session.had_cookie or old is not None:
                self._delete_cookie(app, response)
            return
        text = dump(data)
        lifetime = policy.lifetimes(app.config)[kind]
        token = session.token or services.new_token()
        key = services.key_of(token)
        idle_seconds = int(lifetime.idle.total_seconds())
        expires_at = now + lifetime.absolute
        values = {
            "key": key,
            "kind": kind,
            "staff_id": policy.staff_of(data),
            "terminal_id": policy.terminal_of(data),
            "data": text,
            "created_at": now,
            "last_seen_at": now,
            "expires_at": expires_at,
            "idle_seconds": idle_seconds,
            "ends_at": min(expires_at, now + lifetime.idle),
            "user_agent": self._user_agent(kind),
        }
        bus = get_bus(app)
        with self._db(app) as s:
            if old is not None:
                gone = s.execute(
                    delete(WebSession).where(WebSession.key == old.key).returning(WebSession.key)
                ).first()
                if gone is None:  # ended while this request ran: it stays ended
                    s.rollback()
                    return
            try:
                s.execute(insert(WebSession).values(**values))
                s.commit()
            except IntegrityError:
                # Its staff account or terminal was deleted meanwhile: no session.
                s.rollback()
                if old is not None:
                    services.end_sessions(s, bus, [old.key])
                self._delete_cookie(app, response)
                return
            if old is not None:
                services.publish_ended(bus, services.Ended((old.key,), ()))
            services.delete_expired(s, bus, now, SWEEP_ON_CREATE)
        session.row = LoadedRow(key, kind, text, now, expires_at, idle_seconds)
        session.token, session.fresh = token, False
        self._set_cookie(app, response, token, kind, lifetime.absolute)

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _db(app: Flask) -> Session:
        """A database session of the store's own: a view's pending work is never committed."""
        factory: sessionmaker[Session] = app.extensions["db_sessionmaker"]
        return factory()

    @staticmethod
    def _skipped(app: Flask, path: str) -> bool:
        static = (app.static_url_path or "/static").rstrip("/") + "/"
        return path.startswith(static) or path == "/ws/bridge"

    @staticmethod
    def _user_agent(kind: str) -> str | None:
        # Staff and kiosk devices only: a citizen's browser is nobody's business.
        if kind not in (SessionKind.STAFF, SessionKind.KIOSK):
            return None
        return policy.summarize_user_agent(request.headers.get("User-Agent"))

    def _set_cookie(
        self, app: Flask, response: Response, token: str, kind: str, lifetime: timedelta
    ) -> None:
        persistent = kind in SessionKind.PERSISTENT
        response.set_cookie(
            self.get_cookie_name(app),
            token,
            max_age=int(lifetime.total_seconds()) if persistent else None,
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )
        response.vary.add("Cookie")

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )
        response.vary.add("Cookie")
