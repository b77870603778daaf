"""Which terminal a browser tab stands at: the binding, kept in the server-side session.

- Counter and till: a signed-in staff member opens a terminal they may use in this tab
  (`bind_staff_terminal`): a counter of their provider (a platform admin: any counter),
  a till of their own merchant. The staff session goes on.
- Kiosk: an admin signs in on the kiosk device and opens it as a kiosk for a kiosk
  terminal (`bind_kiosk`): the session becomes a kiosk session with no staff rights.
- Home: a citizen's own browser owns a home terminal (webapp/kiosk/home_binding.py,
  which primes `g.terminal` before each request).

`current_terminal()` re-checks the binding on every request (the staff member still
active and allowed; a kiosk session only for a kiosk terminal). Card flows themselves
are kept in the flow store (store.py) under `flow_session_key()` and the terminal:
nothing of a flow is in the session or the cookie.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for

from .. import db
from ..staff.auth import current_staff
from ..staff.models import Role, StaffUser
from ..terminals.models import Terminal, TerminalKind

F = TypeVar("F", bound=Callable[..., Any])

# The kinds a staff member opens in their own tab (the others are kiosk or home).
STAFF_KINDS = frozenset({TerminalKind.COUNTER, TerminalKind.MERCHANT})


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


def bind_staff_terminal(terminal: Terminal) -> None:
    """Open `terminal` in this signed-in staff member's tab (the caller checked access)."""
    if terminal.kind not in STAFF_KINDS:
        raise ValueError("only a counter or a till opens in a staff tab")
    session["terminal_id"] = terminal.id
    session["terminal_kind"] = terminal.kind
    g.pop("terminal", None)


def unbind() -> None:
    """Leave the terminal (a kiosk session ends entirely)."""
    if session.get("terminal_kind") == TerminalKind.KIOSK:
        _fresh_session()
    else:
        for key in ("terminal_id", "terminal_kind"):
            session.pop(key, None)
    g.pop("terminal", None)


def may_open(user: StaffUser | None, terminal: Terminal) -> bool:
    """Whether `user` may open `terminal` (counters and kiosks by provider, tills by
    merchant; a home terminal is its citizen's browser's alone)."""
    if user is None or not user.active:
        return False
    if terminal.kind == TerminalKind.MERCHANT:
        return (
            user.role == Role.MERCHANT_STAFF
            and user.merchant_id is not None
            and terminal.merchant_id == user.merchant_id
        )
    if terminal.provider_id is None or terminal.kind == TerminalKind.HOME:
        return False
    return user.role == Role.PLATFORM_ADMIN or (
        user.role in (Role.PROVIDER_ADMIN, Role.COUNTER_STAFF)
        and user.provider_id == terminal.provider_id
    )


def staff_may_use(terminal: Terminal) -> bool:
    """Whether the signed-in staff member may open `terminal`."""
    return may_open(current_staff(), terminal)


def current_terminal() -> Terminal | None:
    """The terminal this tab is bound to, if the binding still holds."""
    if "terminal" not in g:
        terminal = None
        terminal_id = session.get("terminal_id")
        kind = session.get("terminal_kind")
        if isinstance(terminal_id, int) and kind != TerminalKind.HOME:
            found = db.session().get(Terminal, terminal_id)
            if found is not None and found.kind == kind:
                if kind == TerminalKind.KIOSK:
                    ok = session.get("staff_id") is None
                else:
                    ok = staff_may_use(found)
                terminal = found if ok else None
        g.terminal = terminal
    return cast(Terminal | None, g.terminal)


def _refusal(code: str, status: int) -> Any:
    from ..catalogue import error_body

    return jsonify(error=error_body(code, final=True)), status


def terminal_required(*kinds: str) -> Callable[[F], F]:
    """Only tabs bound to a terminal (of one of `kinds`, if given) reach the view.

    JSON clients get 401/403 as JSON; pages go to the staff sign-in.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            terminal = current_terminal()
            wants_json = request.path.startswith(("/flow", "/terminal/")) or (
                request.accept_mimetypes.best == "application/json"
            )
            if terminal is None:
                if wants_json:
                    if session.get("terminal_kind") in STAFF_KINDS and current_staff():
                        # The terminal this tab had open is no longer this staff member's
                        # (a till moved to another merchant): refused, not signed out.
                        return _refusal("wrong_terminal", 403)
                    return _refusal("no_terminal", 401)
                return redirect(url_for("staff.login", next=request.full_path.rstrip("?")))
            if kinds and terminal.kind not in kinds:
                if wants_json:
                    return _refusal("wrong_terminal", 403)
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate


def flow_session_key() -> str:
    """The key flows of this browser session are kept under (never sent to the page): the
    server-side session's own key (webapp/sessions). A tab bound to a terminal always
    has a session; without one (a session not yet saved) a random key is kept in it."""
    from ..sessions import current_session_key

    key = current_session_key()
    if key:
        return str(key)
    found = session.get("flow_key")
    if not isinstance(found, str):
        found = secrets.token_urlsafe(32)
        session["flow_key"] = found
    return found


def get_verifier() -> Any:
    """The app's JPKI verifier (built once per app)."""
    from . import verifier_for

    return verifier_for(current_app)
