"""Server-side sessions: the browser holds an opaque token, the server everything else.

`init_app(app)` makes `DatabaseSessionInterface` the app's session interface (views keep
using `flask.session`), registers the admin page /admin/sessions and
`flask sessions cleanup`. For the rest of the platform (see docs/sessions.md):

- `current_session_key()`: the current session's key (SHA-256 hex of its token, not a
  secret), or None when the browser has no server-side session; card flows key their
  server-side state by (session key, terminal id).
- `session_active(app_or_db_session, key)`: whether that session still lives.
- `end_current_session()`: sign-out; `end_staff_sessions(staff_id, keep_current=)`: a
  deactivation or a password change; `rotate_session()`: a new token for this session.
- Every ending is announced on the bus (`services.ENDED_CHANNEL`, "sessions.ended").
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, has_request_context, session
from sqlalchemy.orm import Session

from .. import db
from ..bus import get_bus
from . import policy, services
from .store import DatabaseSessionInterface, ServerSession

__all__ = [
    "DatabaseSessionInterface",
    "ServerSession",
    "current_session_key",
    "end_current_session",
    "end_staff_sessions",
    "init_app",
    "rotate_session",
    "session_active",
]


def init_app(app: Flask) -> None:
    """Sessions in the database, the admin page (with staff), `flask sessions cleanup`."""
    from . import cli, models, views  # noqa: F401  (models: the table must be known)

    policy.lifetimes(app.config)  # a bad setting stops start-up with its name
    app.session_interface = DatabaseSessionInterface()
    app.cli.add_command(cli.group)
    if "staff" in app.blueprints:  # the admin page needs staff sign-in
        app.register_blueprint(views.bp)


def interface(app: Flask) -> DatabaseSessionInterface:
    """The app's session store (made by `init_app`)."""
    found = app.session_interface
    if not isinstance(found, DatabaseSessionInterface):
        raise RuntimeError("this app keeps no server-side sessions (sessions.init_app)")
    return found


def _current() -> ServerSession | None:
    if not has_request_context():
        return None
    found = session._get_current_object()  # type: ignore[attr-defined]
    return found if isinstance(found, ServerSession) else None


def current_session_key() -> str | None:
    """The current session's key (SHA-256 hex of its token), or None if it has none."""
    current = _current()
    return current.identity_key() if current is not None else None


def session_active(app_or_db_session: Flask | Session, key: str) -> bool:
    """Whether the session with `key` exists and has not ended (one primary-key read)."""
    if isinstance(app_or_db_session, Flask):
        now = interface(app_or_db_session).clock()
        with app_or_db_session.extensions["db_sessionmaker"]() as s:
            return services.is_active(s, key, now)
    return services.is_active(app_or_db_session, key, _now())


def _now() -> datetime:
    try:
        return interface(current_app).clock()
    except RuntimeError:  # outside an app context, or an app without the store
        from ..terminals.models import utcnow

        return utcnow()


def rotate_session() -> None:
    """Give this session a fresh token at the end of the request (the old row goes)."""
    current = _current()
    if current is not None:
        current.rotate()


def end_current_session() -> None:
    """End this browser's session now, on every worker (sign-out); the dict is emptied and
    anything stored afterwards in this request starts a new session."""
    current = _current()
    if current is None:
        return
    key = current.forget()
    if key is not None:
        with db.new_session() as s:
            services.end_sessions(s, get_bus(current_app), [key])


def end_staff_sessions(staff_id: int, *, keep_current: bool = False) -> services.Ended:
    """End every session of a staff member (but this one, with `keep_current`)."""
    keep = current_session_key() if keep_current else None
    with db.new_session() as s:
        return services.end_staff_sessions(s, get_bus(current_app), staff_id, keep=keep)
