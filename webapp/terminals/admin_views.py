"""Admin pages for terminals (/admin/terminals): list, create, pairing codes, bridges.

Platform admins pick any provider; provider admins see their own provider's terminals.
A pairing code is shown once, right after it is made; only its hash is kept.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from .. import db
from ..providers.services import list_providers
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from . import get_registry, online_window, services
from .errors import InvalidRequest
from .models import Terminal, TerminalKind, utcnow

bp = Blueprint("terminals_admin", __name__, url_prefix="/admin/terminals")

ADMINS = (Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN)
KIND_LABELS = {
    TerminalKind.COUNTER: _l("Counter"),
    TerminalKind.KIOSK: _l("Kiosk"),
    TerminalKind.MERCHANT: _l("Shop till"),
}


def _provider_ids() -> list[int] | None:
    """The providers this admin may manage (None: all)."""
    me = current_staff()
    if me is None:  # pragma: no cover (staff_required ran first)
        abort(403)
    if me.role == Role.PLATFORM_ADMIN:
        return None
    return [me.provider_id] if me.provider_id is not None else []


def _terminal(terminal_id: int) -> Terminal:
    terminal = db.session().get(Terminal, terminal_id)
    allowed = _provider_ids()
    if terminal is None or (allowed is not None and terminal.provider_id not in allowed):
        abort(404)
    return terminal


def _page(
    provider_id: int | None, issued: services.IssuedCode | None = None, error: str = ""
) -> str:
    s = db.session()
    allowed = _provider_ids()
    providers = [p for p in list_providers(s) if allowed is None or p.id in allowed]
    if provider_id is None and providers:
        provider_id = providers[0].id
    if allowed is not None and provider_id not in allowed:
        abort(404)
    terminals = (
        s.query(Terminal).filter(Terminal.provider_id == provider_id).order_by(Terminal.id).all()
    )
    now, window = utcnow(), online_window(current_app)
    rows = []
    for t in terminals:
        bridges = [b for b in services.list_bridges(s, terminal_id=t.id) if b.active]
        rows.append(
            {
                "terminal": t,
                "bridges": [
                    {"device": b, "online": services.is_online(b, now, window)} for b in bridges
                ],
            }
        )
    return render_template(
        "admin/terminals.html",
        providers=providers,
        provider_id=provider_id,
        rows=rows,
        kinds=KIND_LABELS,
        issued=issued,
        error=error,
    )


@bp.get("/")
@staff_required(*ADMINS)
def index() -> ResponseReturnValue:
    """A provider's terminals with their bridges (online, last seen)."""
    return _page(request.args.get("provider_id", type=int))


@bp.post("/")
@staff_required(*ADMINS)
def create() -> ResponseReturnValue:
    """Add a terminal (counter, kiosk or shop till) to a provider."""
    provider_id = request.form.get("provider_id", type=int)
    allowed = _provider_ids()
    if provider_id is None or (allowed is not None and provider_id not in allowed):
        abort(404)
    try:
        services.create_terminal(
            db.session(),
            provider_id,
            request.form.get("kind", ""),
            request.form.get("name", ""),
        )
    except InvalidRequest:
        return _page(provider_id, error="invalid"), 400
    return redirect(url_for(".index", provider_id=provider_id))


@bp.post("/<int:terminal_id>/pairing-code")
@staff_required(*ADMINS)
def pairing_code(terminal_id: int) -> ResponseReturnValue:
    """Make a one-time pairing code for the terminal and show it (once)."""
    terminal = _terminal(terminal_id)
    issued = services.create_pairing_code(db.session(), terminal.id)
    return _page(terminal.provider_id, issued)


@bp.post("/bridges/<bridge_id>/revoke")
@staff_required(*ADMINS)
def revoke(bridge_id: str) -> ResponseReturnValue:
    """Revoke a bridge and cut its connection off at once (it must be paired again)."""
    s = db.session()
    device = services.get_bridge(s, bridge_id)
    terminal = _terminal(device.terminal_id)
    services.revoke(s, bridge_id)
    get_registry(current_app).cut_off(bridge_id)
    return redirect(url_for(".index", provider_id=terminal.provider_id))
