"""Staff pages: sign in (rate-limited), sign out, home, change password."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import db
from . import services
from .auth import current_staff, login_user, logout_user, safe_next, staff_required
from .forms import LoginForm, PasswordForm
from .models import Role
from .throttle import LoginThrottle

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _throttle() -> LoginThrottle:
    return current_app.extensions["staff_login_throttle"]  # type: ignore[no-any-return]


def _landing() -> str:
    user = current_staff()
    if user is None or user.role == Role.COUNTER_STAFF:
        return url_for("staff.home")
    if user.role == Role.POINTS_OFFICER:
        return url_for("points_pages.municipality")
    if user.role == Role.MERCHANT_STAFF:
        return url_for("points_terminal.tills")  # the till first; settlement is a menu away
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in; 429 after too many failures for this IP or login."""
    if request.method == "GET" and current_staff() is not None:
        return redirect(_landing())
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        ip = request.remote_addr or "unknown"
        login_name = services.normalize_login(form.login.data or "")
        if _throttle().blocked(ip, login_name):
            error = _("Too many failed sign-in attempts. Please wait 15 minutes and try again.")
            status = 429
        else:
            try:
                user = services.authenticate(db.session(), login_name, form.password.data or "")
            except services.InvalidCredentials as exc:
                _throttle().failed(ip, login_name)
                error = exc.message(str(get_locale()))
            else:
                _throttle().succeeded(login_name)
                login_user(user)
                return redirect(safe_next(request.args.get("next")) or _landing())
    return render_template("staff/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out (POST, so a link on another site cannot sign staff out)."""
    logout_user()
    return redirect(url_for("staff.login"))


@bp.get("/")
@staff_required()
def home() -> ResponseReturnValue:
    """The signed-in staff member's start page."""
    return render_template("staff/home.html")


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
            login_user(user)  # this session continues; the others end
            return redirect(url_for("staff.home", changed=1))
    return render_template("staff/password.html", form=form, error=error)
