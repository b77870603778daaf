"""The librarian's tab: /counter (pick a terminal, the counter page).

Thin. The card flow itself is the one API of webapp/cardflow (/flow/..., purposes
`counter_lookup` and `counter_link` in counter/purposes.py); in no-PIN mode the number is
pushed to the tab over /ws/terminal as soon as the card is read (counter/push.py). The
PIN never passes here in the clear: the tab seals it to the bridge (static/js/seal.js).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import select

from .. import db
from ..cardflow.binding import bind_staff_terminal, current_terminal, staff_may_use, unbind
from ..catalogue import error_body
from ..providers.models import Provider
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..terminals.models import Terminal, TerminalKind
from . import services
from .services import PURPOSE_LINK, PURPOSE_LOOKUP, PURPOSE_VERIFY

bp = Blueprint("counter", __name__, url_prefix="/counter")
# Who opens a counter (cardflow.binding.may_open): its provider's staff, a platform admin.
COUNTER_ROLES = (Role.PLATFORM_ADMIN, Role.PROVIDER_ADMIN, Role.COUNTER_STAFF)


def _words(code: str) -> dict[str, Any]:
    return error_body(code, str(get_locale() or "ja"), staff=True, final=True)


@bp.get("/")
@staff_required(*COUNTER_ROLES)
def index() -> ResponseReturnValue:
    """The counter page when a counter terminal is open here; else the terminal picker."""
    terminal = current_terminal()
    if terminal is not None and terminal.kind == TerminalKind.COUNTER:
        provider = db.session().get(Provider, terminal.provider_id)
        if provider is None:
            abort(404)
        return render_template(
            "counter/counter.html",
            terminal=terminal,
            provider=provider,
            settings=services.settings_of(provider),
            purposes={"lookup": PURPOSE_LOOKUP, "link": PURPOSE_LINK, "verify": PURPOSE_VERIFY},
            offline=_words("bridge_offline"),
            unpaired=_words("bridge_unpaired"),
            removed=_words("card_removed"),
        )
    user = current_staff()
    assert user is not None  # noqa: S101 - staff_required
    stmt = select(Terminal).where(Terminal.kind == TerminalKind.COUNTER).order_by(Terminal.name)
    if user.role != Role.PLATFORM_ADMIN:
        stmt = stmt.where(Terminal.provider_id == user.provider_id)
    return render_template("counter/pick.html", terminals=list(db.session().scalars(stmt)))


@bp.post("/open/<int:terminal_id>")
@staff_required(*COUNTER_ROLES)
def open_terminal(terminal_id: int) -> ResponseReturnValue:
    """Open one of the staff member's counter terminals in this tab."""
    terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or terminal.kind != TerminalKind.COUNTER or not staff_may_use(terminal):
        abort(404)
    bind_staff_terminal(terminal)
    return redirect(url_for("counter.index"))


@bp.post("/close")
@staff_required()
def close_terminal() -> ResponseReturnValue:
    """Leave the terminal (back to the picker)."""
    unbind()
    return redirect(url_for("counter.index"))
