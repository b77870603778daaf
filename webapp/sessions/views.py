"""Admin page of sessions (/admin/sessions): who is signed in where, and ending it.

Platform admins see every live session; provider admins those of their own provider's
staff and of its kiosks. A session out of an admin's sight is a 404, to see and to end.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from .. import db
from ..bus import get_bus
from ..paging import page_arg
from ..staff.auth import current_staff, staff_required
from ..staff.forms import ROLE_LABELS
from ..staff.models import Role
from ..tenancy.scope import scope_of
from ..terminals.models import Terminal
from . import current_session_key, end_current_session, interface, services
from .models import SessionKind

bp = Blueprint("sessions_admin", __name__, url_prefix="/admin/sessions")

ADMINS = (Role.PLATFORM_ADMIN, Role.MUNICIPAL_ADMIN, Role.PROVIDER_ADMIN)
_KEY = re.compile(r"[0-9a-f]{64}")
KIND_LABELS = {
    SessionKind.STAFF: _l("Staff"),
    SessionKind.KIOSK: _l("Kiosk"),
    SessionKind.HOME: _l("Home card reader"),
    SessionKind.ANONYMOUS: _l("Not signed in"),
}


JST = timezone(timedelta(hours=9), "JST")  # Japan: UTC+9, no daylight saving


def when(moment: datetime) -> str:
    """A time as the page shows it: Japan time, to the minute."""
    return moment.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def _scope() -> services.Scope:
    me = current_staff()
    if me is None:  # pragma: no cover (staff_required ran first)
        abort(403)
    if me.role == Role.PLATFORM_ADMIN:
        return services.Scope(None)
    if me.role == Role.MUNICIPAL_ADMIN:
        tenant = scope_of(db.session(), me)
        return services.Scope(None, tenant.staff(), tenant.terminals())
    if me.provider_id is None:  # pragma: no cover (a provider admin always has one)
        abort(403)
    return services.Scope(me.provider_id)


@bp.get("/")
@staff_required(*ADMINS)
def index() -> ResponseReturnValue:
    """Live sessions, latest seen first, and the kiosk and home bindings."""
    scope = _scope()
    kinds = {
        k: label
        for k, label in KIND_LABELS.items()
        if (scope.provider_id is None and scope.staff_where is None)
        or k in (SessionKind.STAFF, SessionKind.KIOSK)
    }
    kind = request.args.get("kind", "")
    kind = kind if kind in kinds else ""
    now = interface(current_app).clock()
    s = db.session()
    listing = services.list_sessions(
        s, scope, now, page=page_arg("page"), kinds=(kind,) if kind else ()
    )
    bindings = services.list_bindings(s, scope, now, page=page_arg("bindings_page"))
    s.rollback()  # end the reads' transaction before rendering
    return render_template(
        "admin/sessions.html",
        listing=listing,
        bindings=bindings,
        kind=kind,
        kinds=kinds,
        kind_labels=KIND_LABELS,
        role_labels=ROLE_LABELS,
        current_key=current_session_key(),
        ended=request.args.get("ended", type=int),
        when=when,
    )


@bp.post("/<key>/end")
@staff_required(*ADMINS)
def end(key: str) -> ResponseReturnValue:
    """End one session at once (its browser's next request has no session)."""
    if not _KEY.fullmatch(key):
        abort(404)
    if key == current_session_key():
        end_current_session()  # one's own: this is signing out
        return redirect(url_for("staff.login"))
    ended = services.end_in_scope(db.session(), get_bus(current_app), _scope(), key)
    if not ended:
        abort(404)
    return redirect(url_for(".index", ended=len(ended)))


@bp.post("/terminals/<int:terminal_id>/revoke")
@staff_required(*ADMINS)
def revoke(terminal_id: int) -> ResponseReturnValue:
    """Revoke a kiosk's or a home terminal's binding: every browser bound to it lets go."""
    me = current_staff()
    if me is not None and me.role == Role.MUNICIPAL_ADMIN:
        terminal: Terminal | None = scope_of(db.session(), me).terminal(db.session(), terminal_id)
    else:
        terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or not _scope().may_revoke(terminal):
        abort(404)
    ended = services.end_terminal_sessions(db.session(), get_bus(current_app), terminal.id)
    return redirect(url_for(".index", ended=len(ended)))
