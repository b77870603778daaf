"""The card at a terminal: one state machine for every purpose, kept on the server.

API (see docs/cardflow.md):

- The state machine (`machine`): `Flow`, its `State`s and events; every rule between a
  card on a reader and the purpose it serves, sans-IO.
- Purposes (`purposes`): what a counter, a kiosk, a home terminal or a till supplies
  (`Purpose`); domains register theirs with `flows_for(app).register(...)`.
- The service (`flows.FlowService`): begin, PIN prompt, PIN completion, further steps,
  cancel; flows kept in the server-side `FlowStore` (`store`, `redis_store`).
- The card I/O (`card`): certificate read and check, tries read, the sealed PIN.
- Binding a tab (`binding`): `bind_staff_terminal`, `bind_kiosk`, `current_terminal()`,
  `@terminal_required(...)`.
- The web layer (`views`): the one JSON API under /flow, /terminal/status and the
  /ws/terminal WebSocket.
- `verifier_for(app)`: the app's `webapp.jpki.Verifier`, made by `init_app`.
"""

from __future__ import annotations

import logging

from flask import Flask

from ..jpki import Verifier, build_verifier
from .errors import CardFlowError, FlowCode
from .flows import FlowService
from .store import make_flow_store

log = logging.getLogger(__name__)

__all__ = [
    "CardFlowError",
    "FlowCode",
    "FlowService",
    "flows_for",
    "init_app",
    "verifier_for",
]


def verifier_for(app: Flask) -> Verifier:
    """The app's verifier (made by `init_app` from its settings; demo CA in demo mode)."""
    verifier: Verifier = app.extensions["jpki_verifier"]
    return verifier


def flows_for(app: Flask) -> FlowService:
    """The app's flow service (made by `init_app`)."""
    service: FlowService = app.extensions["cardflow"]
    return service


class _Unconfigured:
    """Stands in for the verifier of an app that cannot check cards (no CARD_KEY_SECRET
    in a test app): any use says why, instead of failing at start-up."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"this platform cannot check cards: {self._reason}")


def init_app(app: Flask) -> None:
    """Build the verifier, the flow store and the flow service; register the views.

    Without a usable CARD_KEY_SECRET the app starts (staff and points pages work) but
    cannot check a card: the reason is logged here and given at the first card.
    """
    from ..bus import get_bus
    from ..terminals import get_registry
    from ..terminals.remote import BusTerminalLink
    from . import cli, views

    app.config.setdefault("KIOSK_IDLE_SECONDS", 60)
    try:
        verifier: Verifier = build_verifier(app.config)
    except ValueError as exc:
        log.warning("cards cannot be checked: %s", exc)
        verifier = _Unconfigured(str(exc))  # type: ignore[assignment]
    app.extensions["jpki_verifier"] = verifier
    store = make_flow_store(
        str(app.config.get("BUS_URL") or "memory://"), app.config.get("BUS_PREFIX")
    )
    service = FlowService(link=BusTerminalLink(get_bus(app)), verifier=verifier, store=store)
    app.extensions["cardflow"] = service
    sources = list(app.config.get("JPKI_LINKAGE_SOURCES") or [])
    if sources and not isinstance(verifier, _Unconfigured):
        from .renewals import DEFAULT_INTERVAL_S, LinkageCatchUp

        interval = float(app.config.get("JPKI_LINKAGE_INTERVAL_SECONDS") or DEFAULT_INTERVAL_S)
        service.renewals = LinkageCatchUp(app, sources, interval_s=interval)
    app.extensions["flow_store"] = store
    app.register_blueprint(views.bp)
    app.cli.add_command(cli.jpki)
    get_registry(app)  # terminals first: card events come from its bridges
    if not isinstance(verifier, _Unconfigured):
        revocation = verifier.revocation
        # `flask jpki refresh-crl` (or the demo's "report lost") reaches every worker.
        get_bus(app).subscribe(cli.CRL_CHANNEL, lambda message: revocation.refresh_all())
