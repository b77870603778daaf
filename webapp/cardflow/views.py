"""The card flow's one JSON API, for every purpose, and the terminal tab's live link.

    POST /flow/begin          {purpose, ...}   read the card; the PIN prompt or the result
    POST /flow/pin/begin                       a fresh PIN prompt (fresh tries read)
    POST /flow/pin/complete   {sealed, command_id, confirm_last_try}
    POST /flow/next                            a two-card purpose's second card
    GET  /flow                                 where the flow stands (a reloaded page)
    GET|POST /flow/do/<step>  {...}            a purpose's further step (link, confirm...)
    POST /flow/cancel
    GET  /terminal/status                      polling fallback of /ws/terminal
    GET  /ws/terminal                          card and bridge events, pushed

Thin: bind, parse, call `FlowService`, answer. Success is `{"flow", "pin"?, "result"?}`;
every refusal is one format, an HTTP status and `{"error": {"code", "message", "title",
"action", "final", "tries_left"?, ...}}` (messages.error_body).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from .. import db
from ..bus import get_bus
from ..catalogue import error_body, number_reason
from ..identity.errors import IdentityError
from ..inputs.web import json_body
from ..ops import events
from ..ops.going_away import held
from ..points.errors import PointsError
from ..sessions.services import ENDED_CHANNEL
from ..sockets import sock
from ..terminals import services
from ..terminals.models import Terminal, TerminalKind
from ..terminals.registry import events_channel
from . import card as cardio
from .binding import current_terminal, flow_session_key, terminal_required
from .errors import CardFlowError, FlowCode
from .flows import FlowService, WrongPinError
from .purposes import FlowContext, PurposeError

log = logging.getLogger(__name__)

bp = Blueprint("cardflow", __name__)

# The tab hears from us at least this often (a keep-alive), so a dead socket shows.
KEEPALIVE = 20.0
# Events waiting for a slow tab: beyond this, the oldest are dropped (the tab re-polls).
MAX_QUEUED = 100
# A counter tab listening counts as present this long after its last sign of life.
PRESENCE_TTL = 3 * KEEPALIVE
# RFC 6455 section 7.4.1: the peer sent what the protocol does not allow.
CLOSE_PROTOCOL_ERROR = 1002
FORWARDED = {
    "snapshot",
    "card_inserted",
    "card_removed",
    "reader_added",
    "reader_removed",
    "bridge_online",
    "bridge_offline",
    "bridge_revoked",  # an admin revoked the terminal's bridge (terminals/registry.cut_off)
    "number",
    "patron_status",  # what the library's own system says (counter/patron_status.py)
}


def flows() -> FlowService:
    """The app's flow service (made by `cardflow.init_app`)."""
    service: FlowService = current_app.extensions["cardflow"]
    return service


def _locale() -> str:
    return str(get_locale() or "ja")


def _terminal() -> Terminal:
    terminal = current_terminal()
    assert terminal is not None  # noqa: S101 - terminal_required
    return terminal


def _context() -> FlowContext:
    return FlowContext(
        s=db.session(),
        terminal=_terminal(),
        session_key=flow_session_key(),
        config=current_app.config,
        link=flows().link,
        now=flows().clock(),
    )


def _body() -> dict[str, Any]:
    body = json_body()  # InputRefused (400) if malformed or out of bounds
    return body if isinstance(body, dict) else {}


def _audience() -> str | None:
    """Whose words this tab shows: its terminal's kind (catalogue.AUDIENCES)."""
    terminal = current_terminal()
    return None if terminal is None else terminal.kind


def _error(code: str, status: int, **extra: Any) -> ResponseReturnValue:
    body = error_body(code, _locale(), audience=_audience(), **extra)
    return jsonify(error=body), status


# A refusal in one of these steps is a refused link (the operator's log and metrics).
LINK_STEPS = frozenset({"link", "link_prepare", "link_verify"})
LINK_PURPOSES = frozenset({"counter_link", "counter_verify"})
LINK_CODES = frozenset(
    {"number_invalid", "already_linked", "number_taken", "terms_not_accepted", "terms_outdated"}
)


def _where() -> dict[str, int | None]:
    terminal = current_terminal()
    return {
        "terminal": None if terminal is None else terminal.id,
        "provider": None if terminal is None else terminal.provider_id,
    }


def _linking() -> bool:
    """Whether this request is a step that links a number (kiosk, home or counter)."""
    args = request.view_args or {}
    if request.endpoint == "cardflow.do":
        return args.get("step") in LINK_STEPS
    return request.endpoint == "cardflow.begin" and _body().get("purpose") in LINK_PURPOSES


def bridge_paired(terminal_id: int) -> bool:
    """Whether the terminal still has a paired bridge (a fresh session of its own: the
    WebSocket handler gave its request's back)."""
    with db.new_session() as s:
        return services.has_active_bridge(s, terminal_id)


@bp.errorhandler(CardFlowError)
def _on_flow_error(exc: CardFlowError) -> ResponseReturnValue:
    if exc.code.value in events.CARD_REFUSALS:
        purpose = _body().get("purpose") if request.endpoint == "cardflow.begin" else None
        events.card_refused(
            exc.code.value,
            reason=exc.reason,
            purpose=purpose if isinstance(purpose, str) else None,
            **_where(),
        )
    extra: dict[str, Any] = {"final": exc.final, "tries_left": exc.tries_left}
    if isinstance(exc, WrongPinError) and not exc.reply.flow.ended:
        extra.update(exc.reply.to_json())
    if exc.renewed and _audience() != TerminalKind.COUNTER:
        # Still refused as revoked; the citizen is told why in their terms: renewed.
        renewed = error_body("revoked_renewed", _locale(), audience=_audience())
        body = error_body(exc.code.value, _locale(), audience=_audience(), renewed=True, **extra)
        body.update({k: renewed[k] for k in ("title", "message", "action")})
        return jsonify(error=body), exc.status
    code = exc.code.value
    terminal = current_terminal()
    if exc.code == FlowCode.BRIDGE_OFFLINE and terminal and not bridge_paired(terminal.id):
        code = FlowCode.BRIDGE_UNPAIRED.value  # waiting will not bring it back: say so
    return _error(code, exc.status, **extra)


@bp.errorhandler(PurposeError)
def _on_purpose_error(exc: PurposeError) -> ResponseReturnValue:
    if _linking():
        events.link_refused(exc.code, **_where())
    return _error(exc.code, exc.status, final=exc.final, **exc.extra)


@bp.errorhandler(IdentityError)
def _on_identity_error(exc: IdentityError) -> ResponseReturnValue:
    if exc.code.value in LINK_CODES or _linking():
        events.link_refused(exc.code.value, **_where())
    reason = number_reason(str(getattr(exc, "reason", "")))
    explanation = None if reason is None else str(reason)
    return _error(exc.code.value, 422, final=False, explanation=explanation)


@bp.errorhandler(PointsError)
def _on_points_error(exc: PointsError) -> ResponseReturnValue:
    events.payment_refused(exc.code.value, **_where())
    return _error(exc.code.value, exc.status, final=False)


# -- the steps --------------------------------------------------------------------------


@bp.post("/flow/begin")
@terminal_required()
def begin() -> ResponseReturnValue:
    """A new flow for the card on the reader, for the purpose the page names."""
    body = _body()
    purpose = body.get("purpose")
    if not isinstance(purpose, str):
        raise PurposeError("unknown_purpose", status=400, final=True)
    return jsonify(flows().begin(_context(), purpose, body).to_json())


@bp.post("/flow/pin/begin")
@terminal_required()
def pin_begin() -> ResponseReturnValue:
    """A fresh PIN prompt for the flow's card."""
    return jsonify(flows().prompt(_context()).to_json())


@bp.post("/flow/pin/complete")
@terminal_required()
def pin_complete() -> ResponseReturnValue:
    """The sealed PIN (the clear PIN never leaves the tab), then the purpose's result."""
    body = _body()
    sealed, command_id = body.get("sealed"), body.get("command_id")
    if not isinstance(sealed, Mapping) or not isinstance(command_id, str):
        raise PurposeError("pin_format", status=400)
    reply = flows().complete(
        _context(),
        sealed=sealed,
        command_id=command_id,
        confirm_last_try=body.get("confirm_last_try") is True,
    )
    return jsonify(reply.to_json())


@bp.post("/flow/next")
@terminal_required()
def next_card() -> ResponseReturnValue:
    """A two-card purpose's second card (now on the reader): read it, then its PIN prompt."""
    return jsonify(flows().next_card(_context()).to_json())


@bp.get("/flow")
@terminal_required()
def current() -> ResponseReturnValue:
    """Where this tab's flow stands."""
    return jsonify(flows().current(_context()).to_json())


@bp.route("/flow/do/<step>", methods=["GET", "POST"])
@terminal_required()
def do(step: str) -> ResponseReturnValue:
    """A further step of the flow's purpose (GET for the steps that only read)."""
    service = flows()
    if request.method == "GET":
        ctx = _context()
        found = service.peek_purpose(ctx)
        if found is not None and step not in found.reads:
            raise PurposeError("unknown_step", status=405)
    return jsonify(service.act(_context(), step, _body()).to_json())


@bp.post("/flow/cancel")
@terminal_required()
def cancel() -> ResponseReturnValue:
    """End this tab's flow."""
    flows().cancel(_context())
    return jsonify(ok=True)


# -- the terminal's live state ----------------------------------------------------------


def status_json(terminal: Terminal) -> dict[str, Any]:
    """The terminal's bridge and card, as the tab sees it (with a pushed number)."""
    status = cardio.terminal_status(flows().link, terminal.id)
    card = status.card
    body: dict[str, Any] = {
        "terminal_id": terminal.id,
        "bridge_online": status.online,
        # Offline and unpaired (revoked, never paired) differ in what the person can do.
        "bridge_paired": status.online or bridge_paired(terminal.id),
        "card": None if card is None else {"reader": card.reader, "epoch": card.epoch},
    }
    if card is not None and terminal.kind == TerminalKind.COUNTER:
        push = current_app.extensions["counter_push"]
        pushed = push.result_for(terminal, card)
        if pushed is not None:
            body["number"] = localize(pushed)
        else:
            push.tab_arrived(terminal.id)  # a tab that polls instead of listening
    return body


def localize(event: dict[str, Any]) -> dict[str, Any]:
    """A pushed number's notice or refusal, worded in this tab's language."""
    out = dict(event)
    for key in ("error", "notice"):
        found = out.get(key)
        if isinstance(found, dict) and isinstance(found.get("code"), str):
            rest = {k: v for k, v in found.items() if k != "code"}
            out[key] = error_body(found["code"], _locale(), staff=True, **rest)
    return out


@bp.get("/terminal/status")
@terminal_required()
def status() -> ResponseReturnValue:
    """Polling fallback: bridge online? card on the reader (and its epoch)?"""
    terminal = _terminal()
    _present(terminal, f"poll:{flow_session_key()}")
    return jsonify(status_json(terminal))


def _present(terminal: Terminal, member: str) -> None:
    """Note a counter tab listening (a pushed lookup needs somebody to show it to)."""
    if terminal.kind == TerminalKind.COUNTER:
        current_app.extensions["counter_push"].present(terminal, member, PRESENCE_TTL)


def _event(message: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "type",
        "reader",
        "epoch",
        "readers",
        "at",
        "result",
        "error",
        "notice",
        "linked",
        "needs_pin",
        "number",
        "patron",
    )
    return {k: message[k] for k in keep if k in message}


@sock.route("/ws/terminal", bp=bp)  # type: ignore[untyped-decorator]
def terminal_socket(ws: Any) -> None:
    """Push the bound terminal's card and bridge events to the tab as they happen."""
    terminal = current_terminal()
    if terminal is None:
        ws.send(json.dumps({"type": "error", "code": "no_terminal"}))
        return
    terminal_id, is_counter = terminal.id, terminal.kind == TerminalKind.COUNTER
    member = f"ws:{uuid.uuid4().hex}"
    push = current_app.extensions["counter_push"]
    session_key = flow_session_key()
    pending: queue.Queue[dict[str, Any]] = queue.Queue(MAX_QUEUED)

    def ended(message: dict[str, Any]) -> None:
        # sessions.ended: {"keys": [...], "terminal_ids": [...]} (webapp/sessions/services.py)
        if session_key in (message.get("keys") or ()):
            pending.put({"type": "session_ended"})

    def deliver(message: dict[str, Any]) -> None:
        if message.get("type") not in FORWARDED:
            return
        try:
            pending.put_nowait(_event(message))
        except queue.Full:
            log.info("a terminal tab is not keeping up; dropping an event")

    def wake() -> None:  # the worker is stopping: leave the queue's wait at once
        with contextlib.suppress(queue.Full):
            pending.put_nowait({"type": "going_away"})

    bus = get_bus(current_app)
    subscription = bus.subscribe(events_channel(terminal_id), deliver)
    session_ends = bus.subscribe(ENDED_CHANNEL, ended)
    try:
        with held(ws, wake) as serving:
            if serving:
                _serve_tab(ws, terminal, member, pending)
    finally:
        subscription.unsubscribe()
        session_ends.unsubscribe()
        if is_counter:
            push.absent(terminal_id, member)


def _serve_tab(
    ws: Any, terminal: Terminal, member: str, pending: queue.Queue[dict[str, Any]]
) -> None:
    """Send the tab its terminal's status, then each event, until it or we go."""
    terminal_id, is_counter = terminal.id, terminal.kind == TerminalKind.COUNTER
    push = current_app.extensions["counter_push"]
    _present(terminal, member)
    first = status_json(terminal)
    db_session = g.pop("db_session", None)  # do not hold a connection for hours
    if db_session is not None:
        db_session.close()
    ws.send(json.dumps({"type": "status", **first}))
    while ws.connected:
        try:
            event = pending.get(timeout=KEEPALIVE)
        except queue.Empty:
            event = {"type": "keepalive"}
            if is_counter:
                push.present_id(terminal_id, member, PRESENCE_TTL)
        if ws.receive(timeout=0) is not None:
            # The tab only listens (each message at most SOCK_SERVER_OPTIONS'
            # max_message_size): whatever it sends breaks the protocol.
            ws.close(reason=CLOSE_PROTOCOL_ERROR, message="this socket takes no frames")
            break
        if event.get("type") == "going_away":
            break
        if event.get("type") == "session_ended":
            ws.send(json.dumps(event))
            break
        if event.get("type") == "number":
            event = localize(event)
        elif event.get("type") in ("bridge_offline", "bridge_revoked"):
            event = {"type": "bridge_offline", "paired": bridge_paired(terminal_id)}
        ws.send(json.dumps(event))
