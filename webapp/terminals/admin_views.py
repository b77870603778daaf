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
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import db
from ..bus import get_bus
from ..paging import Page, contains, id_arg, page_arg, paginate, query_arg
from ..points.models import Merchant
from ..providers.models import Provider
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..tenancy import audit
from ..tenancy.scope import AdminScope, current_scope
from . import get_registry, online_window, services
from .download_views import install_guide
from .errors import InvalidRequest
from .models import Terminal, TerminalKind, utcnow
from .registry import workers_alive

bp = Blueprint("terminals_admin", __name__, url_prefix="/admin/terminals")

ADMINS = (Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
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


def _terminal(terminal_id: int) -> Terminal:
    """The terminal, if one of the admin's providers has it (else 404)."""
    return current_scope().terminal(db.session(), terminal_id)


def _merchant_in_scope(s: Session, scope: AdminScope, merchant_id: int | None) -> None:
    """Tills are bound only to merchants of the admin's reach (AdminScope.merchants)."""
    if merchant_id is None or scope.national:
        return
    found = s.scalar(select(Merchant.id).where(Merchant.id == merchant_id, scope.merchants()))
    if found is None:
        raise InvalidRequest("no such merchant", code="unknown_merchant")


def _merchant_id(field: str = "merchant_id") -> int | None:
    """The form's merchant: None if left empty; InvalidRequest if it is not an id."""
    raw = request.form.get(field, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest("merchant_id must be an integer", code="unknown_merchant")
    return int(raw)


def _provider_choice(s: Session, scope: AdminScope, provider_id: int | None) -> Provider | None:
    """The provider whose terminals are shown: the one asked for (by id, or by code in
    `?provider=`), within the admin's scope (another's is a 404); else a provider admin's
    own, else the first by code; None if there is none."""
    if scope.role is Role.PROVIDER_ADMIN:  # their own, whatever was asked
        if provider_id is not None and provider_id != scope.provider_id:
            abort(404)
        return s.get(Provider, scope.provider_id) if scope.provider_id is not None else None
    code = query_arg("provider")
    if code:
        return s.scalar(select(Provider).where(Provider.code == code, scope.providers()))
    if provider_id is not None:
        return scope.provider(s, provider_id)
    return s.scalar(select(Provider).where(scope.providers()).order_by(Provider.code).limit(1))


def _page(
    provider_id: int | None, issued: services.IssuedCode | None = None, error: str = ""
) -> str:
    s = db.session()
    scope = current_scope()
    provider = _provider_choice(s, scope, provider_id)
    q = query_arg()
    listing = Page()
    if provider is not None:
        stmt = select(Terminal).where(Terminal.provider_id == provider.id).order_by(Terminal.id)
        if q:
            stmt = stmt.where(func.lower(Terminal.name).like(contains(q.lower()), escape="\\"))
        listing = paginate(s, stmt, page_arg())
    terminals = listing.rows
    named = services.merchants_of(s, terminals)
    choices = services.merchant_choices(s, within=scope.merchants())
    now, window = utcnow(), online_window(current_app)
    active = {
        t.id: [b for b in services.list_bridges(s, terminal_id=t.id) if b.active] for t in terminals
    }
    # The workers the rows name, asked whether they live (a dead worker's rows go stale).
    alive = workers_alive(
        get_bus(current_app), (b.connected_worker for bs in active.values() for b in bs)
    )
    rows = []
    for t in terminals:
        rows.append(
            {
                "terminal": t,
                "merchant": named.get(t.merchant_id) if t.merchant_id else None,
                "bridges": [
                    {"device": b, "online": services.is_online(b, now, window, alive)}
                    for b in active[t.id]
                ],
            }
        )
    return render_template(
        "admin/terminals.html",
        choosing=scope.role is not Role.PROVIDER_ADMIN,
        provider=provider,
        provider_id=provider.id if provider else None,
        asked_code=query_arg("provider"),
        q=q,
        listing=listing,
        rows=rows,
        kinds=KIND_LABELS,
        merchant_kind=TerminalKind.MERCHANT,
        merchants=choices,
        # A till's merchant beyond the select's bound is still offered (and selected).
        listed={c.id for c in choices},
        issued=issued,
        guide=install_guide(current_app.config["PLATFORM_ORIGIN"], issued.code if issued else None),
        error=ERRORS.get(error, ERRORS["invalid_request"]) if error else "",
        entered=request.form if error and request.endpoint == "terminals_admin.create" else {},
    )


@bp.get("/")
@staff_required(*ADMINS)
def index() -> ResponseReturnValue:
    """A provider's terminals with their bridges (online, last seen)."""
    return _page(id_arg("provider_id"))


@bp.post("/")
@staff_required(*ADMINS)
def create() -> ResponseReturnValue:
    """Add a terminal (counter, kiosk or shop till) to a provider."""
    scope = current_scope()
    s = db.session()
    provider = scope.provider(s, request.form.get("provider_id", type=int))
    provider_id = provider.id
    try:
        merchant_id = _merchant_id()
        _merchant_in_scope(s, scope, merchant_id)
        terminal = services.create_terminal(
            s,
            provider_id,
            request.form.get("kind", ""),
            request.form.get("name", ""),
            merchant_id=merchant_id,
        )
    except InvalidRequest as exc:
        s.rollback()
        return _page(provider_id, error=exc.code), 400
    me = current_staff()
    audit.record(
        s,
        audit.municipality_id_of(s, provider.municipality_code),
        me.login if me else "?",
        "terminal.create",
        f"{provider.code} {terminal.name}",
        {"terminal_id": terminal.id, "kind": terminal.kind},
    )
    s.commit()
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
        _merchant_in_scope(db.session(), current_scope(), merchant_id)
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
    get_registry(current_app).cut_off(bridge_id, terminal_id=terminal.id)
    return redirect(url_for(".index", provider_id=terminal.provider_id))
