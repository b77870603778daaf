"""The terminal tab's live link: /ws/terminal (card and bridge events) and /terminal/status.

Thin: the WebSocket subscribes to the terminal's events channel on the bus and forwards
each event as JSON text at once; the status endpoint is the polling fallback (and what a
tab asks first, so it does not wait for the next event).
"""

from __future__ import annotations

import json
import logging
import queue
from typing import Any

from flask import Blueprint, current_app, g, jsonify
from flask.typing import ResponseReturnValue

from ..bus import get_bus
from ..terminals.registry import events_channel
from ..views.bridge_ws import sock
from . import services
from .binding import current_terminal, terminal_required

log = logging.getLogger(__name__)

bp = Blueprint("cardflow", __name__)

# The tab hears from us at least this often (a keep-alive), so a dead socket shows.
KEEPALIVE = 20.0
# Events waiting for a slow tab: beyond this, the oldest are dropped (the tab re-polls).
MAX_QUEUED = 100
FORWARDED = {
    "snapshot",
    "card_inserted",
    "card_removed",
    "reader_added",
    "reader_removed",
    "bridge_online",
    "bridge_offline",
}


def status_json(terminal_id: int) -> dict[str, Any]:
    """The terminal's bridge and card, as the tab sees it."""
    status = services.terminal_status(get_bus(current_app), terminal_id)
    card = status.card
    return {
        "terminal_id": terminal_id,
        "bridge_online": status.online,
        "card": None if card is None else {"reader": card.reader, "epoch": card.epoch},
    }


@bp.get("/terminal/status")
@terminal_required()
def status() -> ResponseReturnValue:
    """Polling fallback: bridge online? card on the reader (and its epoch)?"""
    terminal = current_terminal()
    assert terminal is not None  # noqa: S101 - terminal_required
    return jsonify(status_json(terminal.id))


def _event(message: dict[str, Any]) -> dict[str, Any]:
    keep = ("type", "reader", "epoch", "readers", "at")
    return {k: message[k] for k in keep if k in message}


@sock.route("/ws/terminal", bp=bp)  # type: ignore[untyped-decorator]
def terminal_socket(ws: Any) -> None:
    """Push the bound terminal's card and bridge events to the tab as they happen."""
    terminal = current_terminal()
    if terminal is None:
        ws.send(json.dumps({"type": "error", "code": "no_terminal"}))
        return
    terminal_id = terminal.id
    db_session = g.pop("db_session", None)  # do not hold a connection for hours
    if db_session is not None:
        db_session.close()
    events: queue.Queue[dict[str, Any]] = queue.Queue(MAX_QUEUED)

    def deliver(message: dict[str, Any]) -> None:
        if message.get("type") not in FORWARDED:
            return
        try:
            events.put_nowait(_event(message))
        except queue.Full:
            log.info("a terminal tab is not keeping up; dropping an event")

    subscription = get_bus(current_app).subscribe(events_channel(terminal_id), deliver)
    try:
        ws.send(json.dumps({"type": "status", **status_json(terminal_id)}))
        while ws.connected:
            try:
                event = events.get(timeout=KEEPALIVE)
            except queue.Empty:
                event = {"type": "keepalive"}
            ws.send(json.dumps(event))
    finally:
        subscription.unsubscribe()
