"""Who is signed in: session handling and the `staff_required` decorator for blueprints.

Sessions live on the server (webapp/sessions): signing in gives the browser a new token,
signing out deletes the session's row, so a copy of the cookie opens nothing afterwards.
`session_epoch` stays as a second check: a password change or a deactivation bumps it
in the same commit as the change itself, before the account's sessions are deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import unquote

from flask import abort, g, redirect, request, session, url_for

from .. import db
from ..inputs import control_character
from ..sessions import end_current_session
from .models import Role, StaffUser

F = TypeVar("F", bound=Callable[..., Any])

# "/" then anything but "/" or a backslash (or nothing): a path on this site.
_SAME_SITE_PATH = re.compile(r"/(?![/\\])")


def login_user(user: StaffUser) -> None:
    """Start a fresh session for `user`: a new token, the old row deleted (no fixation)."""
    lang = session.get("lang")
    session.clear()  # a server-side session's clear() also rotates its token
    if lang:
        session["lang"] = lang
    session["staff_id"] = user.id
    session["staff_epoch"] = user.session_epoch
    g.pop("staff", None)


def logout_user() -> None:
    """End the staff session on the server at once, keeping only the language choice."""
    lang = session.get("lang")
    end_current_session()
    if lang:
        session["lang"] = lang
    g.pop("staff", None)


def current_staff() -> StaffUser | None:
    """The signed-in, active staff account, or None (one point read per request)."""
    if "staff" not in g:
        user = None
        staff_id = session.get("staff_id")
        if staff_id is not None:
            user = db.session().get(StaffUser, staff_id)
            if user is None or not user.active or user.session_epoch != session.get("staff_epoch"):
                user = None
        g.staff = user
    return cast(StaffUser | None, g.staff)


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (the caller goes home instead).

    A path on this site is "/" then a character that is neither "/" nor a backslash,
    both as given and once percent-decoded, and no control character anywhere.
    Browsers drop TAB and line breaks from a URL and read a backslash as "/", so
    "/\t/evil.com" and "/\\evil.com" lead to //evil.com, another site; a line break
    in a Location header was a 500.
    """
    if not target:
        return None
    for form in (target, unquote(target)):
        if control_character(form) or not _SAME_SITE_PATH.match(form):
            return None
    return target


def staff_required(*roles: Role | str) -> Callable[[F], F]:
    """Only signed-in staff (with one of `roles`, if given) reach the view; others get 403."""
    allowed = {Role(r).value for r in roles}

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_staff()
            if user is None:
                if request.accept_mimetypes.best == "application/json":
                    abort(401)
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            if allowed and user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate
