"""Staff pages: sign in (rate-limited), sign out, home, change password."""

from __future__ import annotations

import math

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import db
from ..sessions import end_staff_sessions
from . import services
from .auth import current_staff, login_user, logout_user, safe_next, staff_required
from .forms import ROLE_LABELS, LoginForm, PasswordForm
from .menu import work_for
from .throttle import LoginThrottle

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _throttle() -> LoginThrottle:
    return current_app.extensions["staff_login_throttle"]  # type: ignore[no-any-return]


def _landing() -> str:
    # Every role starts on its staff home: its own work first (staff/menu.py).
    return url_for("staff.home")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in; 429 (with Retry-After) once the throttle's budgets are spent (throttle.py)."""
    if request.method == "GET" and current_staff() is not None:
        return redirect(_landing())
    form = LoginForm()
    error = None
    status = 200
    wait = 0
    if form.validate_on_submit():
        address = request.remote_addr
        login_name = services.normalize_login(form.login.data or "")
        # The attempt is counted before the password is checked (webapp/throttle.py).
        wait = _throttle().begin(address, login_name)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            error = _(
                "Too many failed sign-in attempts. Please try again in %(minutes)s minutes.",
                minutes=minutes,
            )
            status = 429
        else:
            try:
                user = services.authenticate(db.session(), login_name, form.password.data or "")
            except services.InvalidCredentials as exc:
                error = exc.message(str(get_locale()))  # the failure keeps its attempt
            except BaseException:
                _throttle().abandoned(address, login_name)
                raise
            else:
                _throttle().succeeded(address, login_name)
                login_user(user)
                return redirect(safe_next(request.args.get("next")) or _landing())
    response = current_app.make_response(
        (render_template("staff/login.html", form=form, error=error), status)
    )
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (POST, so a link on another site cannot sign staff out)."""
    logout_user()
    return redirect(url_for("staff.login"))


@bp.get("/")
@staff_required()
def home() -> ResponseReturnValue:
    """The signed-in staff member's start page: their terminals and pages first."""
    user = current_staff()
    assert user is not None  # noqa: S101  (staff_required)
    return render_template(
        "staff/home.html",
        work=work_for(user, request.endpoint),
        role_label=ROLE_LABELS.get(user.role, user.role),
    )


@bp.route("/password", methods=["GET", "POST"])
@staff_required()
def password() -> ResponseReturnValue:
    """Change one's own password."""
    form = PasswordForm()
    error = None
    user = current_staff()
    assert user is not None  # noqa: S101  (staff_required)
    if form.validate_on_submit():
        try:
            services.change_password(
                db.session(), user, form.current.data or "", form.new.data or ""
            )
        except services.StaffError as exc:
            error = exc.message(str(get_locale()))
        else:
            end_staff_sessions(user.id, keep_current=True)  # the others end at once
            login_user(user)  # this one continues under a fresh token
            return redirect(url_for("staff.home", changed=1))
    return render_template("staff/password.html", form=form, error=error)
