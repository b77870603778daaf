"""At home (/home): a citizen's own card reader, through the bridge, in their own browser.

`GET /home/` explains what is needed; `POST /home/terminal` (CSRF, throttled per IP and
overall) makes a personal terminal of kind `home` bound to this browser's session and
shows its one-time pairing code with the two bridge commands; `GET /home/status` says
when the bridge has paired (home.js polls it). From then on the same page is the kiosk
flow (templates/kiosk/_screens.html, kiosk.js, /kiosk/api) on that terminal.
"""

from __future__ import annotations

import os
import threading
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
from limits import parse

from .. import db
from ..staff.throttle import Budget, FailureThrottle, storage_uri
from ..terminals import services
from ..terminals.models import Terminal, utcnow
from . import home_binding
from .home_binding import CODE_KEY, bind_home, is_home_session, owned_terminal, unbind_home

bp = Blueprint("home", __name__, url_prefix="/home")
_lock = threading.Lock()


def throttle(app: Flask) -> FailureThrottle:
    """The app's throttle of home terminal creation (pairing's mechanism, own budgets)."""
    found: FailureThrottle | None = app.extensions.get("home_terminal_throttle")
    if found is None:
        with _lock:
            found = app.extensions.get("home_terminal_throttle")
            if found is None:
                found = FailureThrottle(
                    app.config.get("HOME_THROTTLE_STORAGE")
                    or storage_uri(app.config.get("BUS_URL"))
                )
                app.extensions["home_terminal_throttle"] = found
    return found


def _budgets(ip: str) -> tuple[Budget, Budget]:
    config = current_app.config
    return (
        (parse(config["HOME_LIMIT_PER_IP"]), "home-terminal-ip", ip),
        (parse(config["HOME_LIMIT_OVERALL"]), "home-terminal", "all"),
    )


def _client_ip() -> str:
    return request.remote_addr or "unknown"


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
    return render_template(
        "kiosk/home.html",
        origin=current_app.config.get("PLATFORM_ORIGIN", ""),
        idle_seconds=int(current_app.config["HOME_IDLE_SECONDS"]),
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
        return _page(state="pairing", terminal=terminal, code=_code_shown(terminal))
    session.pop(CODE_KEY, None)
    return _page(state="ready", terminal=terminal)


@bp.post("/terminal")
def create() -> ResponseReturnValue:
    """Make a personal terminal for this browser and show its pairing code (throttled)."""
    budgets = _budgets(_client_ip())
    wait = throttle(current_app).retry_after(*budgets)
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
    created = services.create_home_terminal(db.session())
    throttle(current_app).hit(*budgets)
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
    env = os.environ
    app.config.setdefault(
        "HOME_TERMINAL_IDLE_DAYS", float(env.get("ICHIMAI_HOME_TERMINAL_IDLE_DAYS", "30"))
    )
    app.config.setdefault("HOME_IDLE_SECONDS", float(env.get("ICHIMAI_HOME_IDLE_SECONDS", "600")))
    app.config.setdefault("HOME_LIMIT_PER_IP", env.get("ICHIMAI_HOME_LIMIT_PER_IP", "5 per hour"))
    app.config.setdefault(
        "HOME_LIMIT_OVERALL", env.get("ICHIMAI_HOME_LIMIT_OVERALL", "2000 per hour")
    )
    app.register_blueprint(bp)
    app.before_request(home_binding.prime_binding)
