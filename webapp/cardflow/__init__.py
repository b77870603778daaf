"""The card at a terminal: the layer shared by the counter, the kiosk and the merchant till.

API (see docs/cardflow.md):

- Binding a tab (Flask, `binding`): `bind_counter(terminal)`, `bind_kiosk(terminal)`,
  `unbind()`, `current_terminal()`, `@terminal_required(kind)`, and the per-terminal flow
  state `save_flow(dict)`, `load_flow()`, `clear_flow()`.
- Card steps (no Flask, `services`): `read_card(bus, verifier, terminal_id) -> CardRead`,
  `begin_pin(bus, verifier, terminal_id, purpose, s=db_session) -> PinPrompt`,
  `complete_pin(bus, verifier, terminal_id, prompt.state(), sealed, confirm) ->
  VerifiedCard`, `terminal_status(bus, terminal_id)`, `card_present(bus, id, epoch)`.
  Failures raise `CardFlowError(code: FlowCode, tries_left)`.
- Words: `message_for(code, locale) -> Message(title, explanation, action)`.
- Live events: the browser WebSocket `/ws/terminal` pushes the terminal's card and
  bridge events (`card_inserted`, `card_removed`, `bridge_online`, `bridge_offline`,
  `snapshot`) and `GET /terminal/status` is the polling fallback.
- `verifier_for(app)`: the app's `webapp.jpki.Verifier`, built once from its settings
  and kept in `app.extensions["jpki_verifier"]`.
"""

from __future__ import annotations

import threading

from flask import Flask

from ..jpki import Verifier, build_verifier
from .errors import CardFlowError, FlowCode
from .messages import Message, error_body, message_for

__all__ = [
    "CardFlowError",
    "FlowCode",
    "Message",
    "error_body",
    "init_app",
    "message_for",
    "verifier_for",
]

_lock = threading.Lock()


def verifier_for(app: Flask) -> Verifier:
    """The app's verifier, built on first use from its settings (demo CA in demo mode)."""
    verifier: Verifier | None = app.extensions.get("jpki_verifier")
    if verifier is None:
        with _lock:
            verifier = app.extensions.get("jpki_verifier")
            if verifier is None:
                verifier = build_verifier(app.config)
                app.extensions["jpki_verifier"] = verifier
    return verifier


def init_app(app: Flask) -> None:
    """Register /ws/terminal and /terminal/status (needs terminals.init_app first)."""
    from . import views

    app.config.setdefault("KIOSK_IDLE_SECONDS", 60)
    app.register_blueprint(views.bp)
