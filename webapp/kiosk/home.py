"""At home (/home): a citizen's own card reader, through the bridge, in their own browser.

`GET /home/` explains what is needed; `POST /home/terminal` (CSRF, throttled per IP and
overall) makes a personal terminal of kind `home` bound to this browser's session and
shows its one-time pairing code with the two bridge commands; `GET /home/status` says
when the bridge has paired (home.js polls it). From then on the same page is the kiosk
flow (templates/kiosk/_screens.html, kiosk.js, /kiosk/api) on that terminal.
"""

from __future__ import annotations

import os
from datetime import datetime

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import db
from ..terminals import services
from ..terminals.download_views import install_guide
from ..terminals.models import Terminal, utcnow
from ..throttle import AttemptLimiter, Budget, app_limiter, client_key, setting
from . import home_binding
from .home_binding import CODE_KEY, bind_home, is_home_session, owned_terminal, unbind_home

bp = Blueprint("home", __name__, url_prefix="/home")


def throttle(app: Flask) -> AttemptLimiter:
    """The app's attempt limiter, which counts home terminal creation (webapp/throttle.py)."""
    return app_limiter(app.extensions, app.config)


def _budgets(address: str | None) -> tuple[Budget, Budget]:
    """Per client address (IPv6 by /64) and overall, from the settings of now."""
    config = current_app.config
    return (
        Budget.of(config["HOME_LIMIT_PER_IP"], "home-terminal-ip", client_key(address)),
        Budget.of(config["HOME_LIMIT_OVERALL"], "home-terminal", "all"),
    )


def _code_shown(terminal: Terminal) -> dict[str, str] | None:
    """The pairing code kept in the session, while it is still good."""
    code = session.get(CODE_KEY)
    if not isinstance(code, dict):
        return None
    try:
        expires = datetime.fromisoformat(str(code.get("expires_at")))
    except ValueError:
        return None
    return code if expires > utcnow() else None


def _page(**extra: object) -> str:
    origin = current_app.config.get("PLATFORM_ORIGIN", "")
    code = extra.get("code")
    return render_template(
        "kiosk/home.html",
        origin=origin,
        idle_seconds=int(current_app.config["HOME_IDLE_SECONDS"]),
        guide=install_guide(origin, code.get("code") if isinstance(code, dict) else None),
        **extra,
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    """What a citizen needs at home; then the pairing code; then the kiosk flow."""
    terminal, expired = owned_terminal()
    if terminal is None:
        if is_home_session() and session.get("staff_id") is None:
            unbind_home()  # expired or not ours: the session forgets it
        return _page(state="start", expired=expired)
    if not services.home_paired(db.session(), terminal.id):
        if services.had_revoked_bridge(db.session(), terminal.id):
            # Its bridge was revoked: the code it paired with is used; a new one is needed.
            session.pop(CODE_KEY, None)
            return _page(state="pairing", terminal=terminal, code=None, revoked=True)
        return _page(state="pairing", terminal=terminal, code=_code_shown(terminal))
    session.pop(CODE_KEY, None)
    return _page(state="ready", terminal=terminal)


@bp.post("/terminal")
def create() -> ResponseReturnValue:
    """Make a personal terminal for this browser and show its pairing code (throttled)."""
    budgets = _budgets(request.remote_addr)
    # Taken before the terminal is made, so parallel presses cannot make more.
    wait = throttle(current_app).take(*budgets)
    if wait:
        minutes = max(1, (wait + 59) // 60)
        message = _(
            "Too many card readers were set up from this connection. "
            "Please try again in %(minutes)s minutes.",
            minutes=minutes,
        )
        response = current_app.make_response((_page(state="start", error=message), 429))
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        created = services.create_home_terminal(db.session())
    except BaseException:
        throttle(current_app).give_back(*budgets)  # nothing was made
        raise
    bind_home(created)
    return redirect(url_for("home.index"))


@bp.get("/status")
def status() -> ResponseReturnValue:
    """For home.js while the code is shown: start, pairing, or ready (paired)."""
    terminal, expired = owned_terminal()
    if terminal is None:
        return jsonify(state="start", expired=expired)
    paired = services.home_paired(db.session(), terminal.id)
    return jsonify(state="ready" if paired else "pairing")


def init_app(app: Flask) -> None:
    """Settings, the /home blueprint and the home-session check before each request."""
    # HOME_TERMINAL_IDLE_DAYS is in webapp.config: a home session's idle timeout too.
    env = os.environ
    app.config.setdefault("HOME_IDLE_SECONDS", float(env.get("ICHIMAI_HOME_IDLE_SECONDS", "600")))
    # Why these numbers: docs/security.md.
    setting(app.config, "HOME_LIMIT_PER_IP", "5 per hour")
    setting(app.config, "HOME_LIMIT_OVERALL", "2000 per hour")
    app_limiter(app.extensions, app.config)
    app.register_blueprint(bp)
    app.before_request(home_binding.prime_binding)
