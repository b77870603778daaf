"""Admin pages for terminals (/admin/terminals): list, create, pairing codes, bridges,
and the merchant of each shop till.

Platform admins pick any provider; provider admins see their own provider's terminals.
A pairing code is shown once, right after it is made; only its hash is kept. A shop till
is created with its merchant and can be moved to another one; a refused change shows
why and writes nothing.
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
# InvalidRequest codes of the services layer, as the admin reads them.
ERRORS = {
    "invalid_request": _l("The terminal could not be created: check the kind and the name."),
    "merchant_required": _l("A shop till needs its merchant: pick one in the list."),
    "merchant_not_allowed": _l(
        "Only a shop till has a merchant: leave the merchant empty for a counter or a kiosk."
    ),
    "unknown_merchant": _l("There is no such merchant: pick one in the list."),
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


def _merchant_id(field: str = "merchant_id") -> int | None:
    """The form's merchant: None if left empty; InvalidRequest if it is not an id."""
    raw = request.form.get(field, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest("merchant_id must be an integer", code="unknown_merchant")
    return int(raw)


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
    named = services.merchants_of(s, terminals)
    choices = services.merchant_choices(s)
    now, window = utcnow(), online_window(current_app)
    rows = []
    for t in terminals:
        bridges = [b for b in services.list_bridges(s, terminal_id=t.id) if b.active]
        rows.append(
            {
                "terminal": t,
                "merchant": named.get(t.merchant_id) if t.merchant_id else None,
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
        merchant_kind=TerminalKind.MERCHANT,
        merchants=choices,
        # A till's merchant beyond the select's bound is still offered (and selected).
        listed={c.id for c in choices},
        issued=issued,
        error=ERRORS.get(error, ERRORS["invalid_request"]) if error else "",
        entered=request.form if error and request.endpoint == "terminals_admin.create" else {},
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
            merchant_id=_merchant_id(),
        )
    except InvalidRequest as exc:
        db.session().rollback()
        return _page(provider_id, error=exc.code), 400
    return redirect(url_for(".index", provider_id=provider_id))


@bp.post("/<int:terminal_id>/merchant")
@staff_required(*ADMINS)
def change_merchant(terminal_id: int) -> ResponseReturnValue:
    """Bind a shop till to another merchant (its old merchant's staff lose it at once)."""
    terminal = _terminal(terminal_id)
    provider_id = terminal.provider_id
    try:
        merchant_id = _merchant_id()
        if merchant_id is None:
            raise InvalidRequest("pick a merchant", code="merchant_required")
        services.set_merchant(db.session(), terminal.id, merchant_id)
    except InvalidRequest as exc:
        db.session().rollback()
        return _page(provider_id, error=exc.code), 400
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
