"""Which home terminal (自宅のカードリーダー) a browser owns: its session only.

A home session holds `terminal_id`, `terminal_kind = "home"` and the terminal's owner key
(256 random bits; the database keeps its SHA-256 only). Before every request
`prime_binding` checks that binding (the terminal exists, is of kind `home`, the key
matches, no staff member is signed in, the terminal has not expired) and gives the
answer to `cardflow.binding.current_terminal()` through its per-request cache
(`g.terminal`): every view that serves a bound terminal (the kiosk API,
/terminal/status, /ws/terminal) then sees the home terminal, or none at all. Nothing
else about the session lets a browser reach a home terminal: a terminal id copied into
another session, without the key, is refused.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request, session

from .. import db
from ..terminals import services
from ..terminals.models import Terminal, TerminalKind

OWNER_KEY = "home_key"
CODE_KEY = "home_code"  # the pairing code, shown on /home until the bridge paired


def idle_limit() -> timedelta:
    """How long an unused home terminal lives (HOME_TERMINAL_IDLE_DAYS)."""
    return timedelta(days=float(current_app.config["HOME_TERMINAL_IDLE_DAYS"]))


def bind_home(created: services.HomeTerminal) -> None:
    """Make this browser's session the owner of a new home terminal (no staff rights)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session.permanent = True
    session["terminal_id"] = created.terminal.id
    session["terminal_kind"] = TerminalKind.HOME
    session[OWNER_KEY] = created.owner_key
    session[CODE_KEY] = {
        "code": created.code.code,
        "expires_at": created.code.expires_at.isoformat(),
    }
    g.pop("terminal", None)


def unbind_home() -> None:
    """Forget the home terminal in this session (the language choice stays)."""
    for key in ("terminal_id", "terminal_kind", OWNER_KEY, CODE_KEY):
        session.pop(key, None)
    g.terminal = None


def is_home_session() -> bool:
    """Whether this session claims a home terminal (valid or not)."""
    return session.get("terminal_kind") == TerminalKind.HOME


def owned_terminal() -> tuple[Terminal | None, bool]:
    """(the home terminal this session validly owns, whether it was refused as expired)."""
    terminal_id = session.get("terminal_id")
    if not is_home_session() or not isinstance(terminal_id, int):
        return None, False
    if session.get("staff_id") is not None:
        return None, False
    s = db.session()
    found = s.get(Terminal, terminal_id)
    if found is None or not services.owner_key_matches(found, session.get(OWNER_KEY)):
        return None, found is None  # deleted by the clean-up: expired
    if services.home_expired(s, found, idle=idle_limit()):
        return None, True
    return found, False


def prime_binding() -> None:
    """Before each request of a home session: decide its terminal once (or none)."""
    if not is_home_session() or request.endpoint == "static":
        return
    terminal, _ = owned_terminal()
    if terminal is not None:
        services.touch_home(db.session(), terminal)
    g.terminal = terminal
