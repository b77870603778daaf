"""Kiosk pages: open a kiosk terminal on this device (admins), and the kiosk itself."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from .. import db
from ..cardflow.binding import bind_kiosk, current_terminal, staff_may_use, terminal_required
from ..staff.auth import staff_required
from ..staff.models import Role
from ..terminals.models import Terminal, TerminalKind

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")


@bp.get("/")
@terminal_required(TerminalKind.KIOSK)
def index() -> ResponseReturnValue:
    """The kiosk: one page whose screens kiosk.js switches (at most five to a link)."""
    terminal = current_terminal()
    return render_template(
        "kiosk/kiosk.html",
        terminal=terminal,
        idle_seconds=int(current_app.config.get("KIOSK_IDLE_SECONDS", 60)),
    )


@bp.post("/open/<int:terminal_id>")
@staff_required(Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)
def open_kiosk(terminal_id: int) -> ResponseReturnValue:
    """Make this browser the kiosk of a kiosk terminal (the admin's session ends here)."""
    terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or not staff_may_use(terminal):
        abort(404)
    if terminal.kind != TerminalKind.KIOSK:
        abort(400)
    bind_kiosk(terminal)
    return redirect(url_for("kiosk.index"))
