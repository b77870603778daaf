"""Which terminal a browser tab stands at, and the card flow state kept for it.

- Counter: a signed-in staff member opens one of their provider's terminals
  (`bind_counter(terminal)`: `session['terminal_id']`, the staff session goes on).
- Kiosk: an admin signs in on the kiosk device and opens it as a kiosk for a kiosk
  terminal (`bind_kiosk(terminal)`): the session is cleared and becomes a kiosk session
  with no staff rights and a long-lived (permanent) cookie.

`current_terminal()` re-checks the binding on every request (the staff member still
active and of the terminal's provider; a kiosk session only for a kiosk terminal).
Flow state (`save_flow`, `load_flow`, `clear_flow`) lives in the signed session cookie,
tagged with the terminal: a state for another terminal is never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for

from .. import db
from ..staff.auth import current_staff
from ..staff.models import Role
from ..terminals.models import Terminal, TerminalKind

F = TypeVar("F", bound=Callable[..., Any])

FLOW_KEY = "cardflow"


def _fresh_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def bind_kiosk(terminal: Terminal) -> None:
    """Turn this browser's session into a kiosk session for `terminal` (no staff rights)."""
    if terminal.kind != TerminalKind.KIOSK:
        raise ValueError("only a kiosk terminal opens as a kiosk")
    _fresh_session()
    session.permanent = True
    session["terminal_id"] = terminal.id
    session["terminal_kind"] = TerminalKind.KIOSK
    g.pop("terminal", None)


def bind_counter(terminal: Terminal) -> None:
    """Open `terminal` in this signed-in staff member's tab (the caller checked access)."""
    session["terminal_id"] = terminal.id
    session["terminal_kind"] = terminal.kind
    session.pop(FLOW_KEY, None)
    g.pop("terminal", None)


def unbind() -> None:
    """Leave the terminal (a kiosk session ends entirely)."""
    if session.get("terminal_kind") == TerminalKind.KIOSK:
        _fresh_session()
    else:
        for key in ("terminal_id", "terminal_kind", FLOW_KEY):
            session.pop(key, None)
    g.pop("terminal", None)


def staff_may_use(terminal: Terminal) -> bool:
    """Whether the signed-in staff member may open `terminal`."""
    user = current_staff()
    if user is None or terminal.provider_id is None:
        return False  # a home terminal (no provider) is its citizen's browser's alone
    return user.role == Role.PLATFORM_ADMIN or user.provider_id == terminal.provider_id


def current_terminal() -> Terminal | None:
    """The terminal this tab is bound to, if the binding still holds."""
    if "terminal" not in g:
        terminal = None
        terminal_id = session.get("terminal_id")
        if isinstance(terminal_id, int):
            found = db.session().get(Terminal, terminal_id)
            if found is not None:
                if session.get("terminal_kind") == TerminalKind.KIOSK:
                    ok = found.kind == TerminalKind.KIOSK and session.get("staff_id") is None
                else:
                    ok = staff_may_use(found)
                terminal = found if ok else None
        g.terminal = terminal
    return cast(Terminal | None, g.terminal)


def terminal_required(kind: str | None = None) -> Callable[[F], F]:
    """Only tabs bound to a terminal (of `kind`, if given) reach the view.

    JSON clients get 401/403 as JSON; pages go to the staff sign-in.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            terminal = current_terminal()
            wants_json = request.path.startswith(("/kiosk/api", "/terminal/", "/counter/api"))
            if terminal is None:
                if wants_json or request.accept_mimetypes.best == "application/json":
                    return jsonify(error={"code": "no_terminal"}), 401
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            if kind is not None and terminal.kind != kind:
                if wants_json:
                    return jsonify(error={"code": "wrong_terminal"}), 403
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def save_flow(state: dict[str, Any]) -> None:
    """Keep card flow state for the current terminal (signed cookie)."""
    terminal = current_terminal()
    if terminal is None:
        raise RuntimeError("no terminal bound")
    session[FLOW_KEY] = {**state, "_terminal": terminal.id}


def load_flow() -> dict[str, Any]:
    """The flow state of the current terminal ({} if none or another terminal's)."""
    state = session.get(FLOW_KEY)
    terminal = current_terminal()
    if not isinstance(state, dict) or terminal is None or state.get("_terminal") != terminal.id:
        return {}
    return {k: v for k, v in state.items() if k != "_terminal"}


def clear_flow() -> None:
    """Forget the flow state (card removed, session over)."""
    session.pop(FLOW_KEY, None)


def get_verifier() -> Any:
    """The app's JPKI verifier (built once per app)."""
    from . import verifier_for

    return verifier_for(current_app)
