"""Who is signed in: session handling and the `staff_required` decorator for blueprints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, g, redirect, request, session, url_for

from .. import db
from .models import Role, StaffUser

F = TypeVar("F", bound=Callable[..., Any])


def login_user(user: StaffUser) -> None:
    """Start a fresh session for `user` (old session data dropped: no fixation)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session["staff_id"] = user.id
    session["staff_epoch"] = user.session_epoch
    g.pop("staff", None)


def logout_user() -> None:
    """End the staff session, keeping only the language choice."""
    lang = session.get("lang")
    session.clear()
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
    """`target` if it is a path on this site, else None (no open redirects)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


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
