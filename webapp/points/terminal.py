"""Merchant terminal (/points/terminal): amount, card, sealed PIN, confirm, receipt.

Thin: the card steps are `webapp.cardflow`, the payment is `spend.spend`. A merchant
terminal names its merchant (`Terminal.merchant_id`, set by an admin on /admin/terminals);
only that merchant's staff open it, and every request checks the binding again, so a
till moved to another merchant is closed to the old merchant's staff at once.
The idempotency key is made here at flow start: a double confirm is one payment.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from .. import db
from ..bus import get_bus
from ..cardflow import CardFlowError, FlowCode, error_body, verifier_for
from ..cardflow import services as cardflow
from ..identity.models import CardBinding
from ..identity.services import card_key_bytes
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..terminals.models import Terminal, TerminalKind
from . import spend
from .errors import Code, InvalidInput, PointsError
from .models import Merchant

bp = Blueprint("points_terminal", __name__, url_prefix="/points/terminal")
PURPOSE = "pay"
FLOW = "points_terminal"


def _locale() -> str:
    return str(get_locale() or "ja")


def merchant_for(terminal: Terminal) -> int | None:
    """The merchant a merchant terminal belongs to (None: not a till, or not bound)."""
    return terminal.merchant_id if terminal.kind == TerminalKind.MERCHANT else None


def _bound() -> tuple[Terminal, Merchant] | None:
    """This tab's merchant terminal and merchant, if the binding still holds."""
    user = current_staff()
    terminal_id = cookie.get("points_terminal_id")
    if user is None or user.role != Role.MERCHANT_STAFF or not isinstance(terminal_id, int):
        return None
    terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or user.merchant_id is None:
        return None
    if merchant_for(terminal) != user.merchant_id:
        return None
    merchant = db.session().get(Merchant, user.merchant_id)
    return None if merchant is None else (terminal, merchant)


def _need() -> tuple[Terminal, Merchant]:
    bound = _bound()
    if bound is None:
        abort(403)
    return bound


def _load(terminal: Terminal) -> dict[str, Any]:
    state = cookie.get(FLOW)
    if not isinstance(state, dict) or state.get("terminal") != terminal.id:
        return {}
    return dict(state)


def _save(terminal: Terminal, state: dict[str, Any]) -> None:
    cookie[FLOW] = {**state, "terminal": terminal.id}


def _active(terminal: Terminal, *step: str) -> dict[str, Any]:
    """The flow state, if it reached `step` and its card is still on the reader."""
    state = _load(terminal)
    if "epoch" not in state or any(k not in state for k in step):
        raise CardFlowError(FlowCode.SESSION_ENDED, "no payment in progress")
    if not cardflow.card_present(get_bus(current_app), terminal.id, int(state["epoch"])):
        cookie.pop(FLOW, None)
        raise CardFlowError(FlowCode.CARD_REMOVED)
    return state


@bp.errorhandler(CardFlowError)
def _on_flow_error(exc: CardFlowError) -> ResponseReturnValue:
    if exc.final:
        cookie.pop(FLOW, None)
    return jsonify(error=error_body(exc, _locale())), 409 if exc.final else 400


@bp.errorhandler(PointsError)
def _on_points_error(exc: PointsError) -> ResponseReturnValue:
    cookie.pop(FLOW, None)
    text = exc.message_en if _locale().startswith("en") else exc.message_ja
    return jsonify(error={"code": exc.code.value, "explanation": text, "final": True}), 409


@bp.post("/open/<int:terminal_id>")
@staff_required(Role.MERCHANT_STAFF)
def open_terminal(terminal_id: int) -> ResponseReturnValue:
    """Open this merchant's terminal in the staff member's tab."""
    terminal = db.session().get(Terminal, terminal_id)
    user = current_staff()
    if terminal is None or user is None or user.merchant_id is None:
        abort(404)
    if merchant_for(terminal) != user.merchant_id:
        abort(404)
    cookie["points_terminal_id"] = terminal.id
    cookie.pop(FLOW, None)
    return redirect(url_for("points_terminal.index"))


@bp.get("/")
@staff_required(Role.MERCHANT_STAFF)
def index() -> ResponseReturnValue:
    """The terminal page: screens switched by points_terminal.js."""
    terminal, merchant = _need()
    return render_template("points/terminal.html", terminal=terminal, merchant=merchant)


@bp.post("/api/start")
@staff_required(Role.MERCHANT_STAFF)
def start() -> ResponseReturnValue:
    """The amount (staff), then the card on the reader: the payment's key is made here."""
    terminal, _ = _need()
    cookie.pop(FLOW, None)
    points = (request.get_json(silent=True) or {}).get("points")
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(Code.INVALID_AMOUNT)
    read = cardflow.read_card(get_bus(current_app), verifier_for(current_app), terminal.id)
    state = {"epoch": read.epoch, "points": points, "key": uuid.uuid4().hex}
    _save(terminal, state)
    return jsonify(ok=True, points=points, next="pin")


@bp.post("/api/pin/begin")
@staff_required(Role.MERCHANT_STAFF)
def pin_begin() -> ResponseReturnValue:
    """Tries left and the sealing key for the PIN pad."""
    terminal, _ = _need()
    state = _active(terminal)
    prompt = cardflow.begin_pin(
        get_bus(current_app),
        verifier_for(current_app),
        terminal.id,
        PURPOSE,
        s=db.session(),
        epoch=int(state["epoch"]),
    )
    state["prompt"] = prompt.state()
    _save(terminal, state)
    return jsonify(prompt.public())


@bp.post("/api/pin/complete")
@staff_required(Role.MERCHANT_STAFF)
def pin_complete() -> ResponseReturnValue:
    """The sealed PIN; then the citizen's spendable balance here, to confirm."""
    terminal, merchant = _need()
    state = _active(terminal)
    prompt = state.pop("prompt", None)
    _save(terminal, state)  # one prompt, one try
    if not prompt:
        raise CardFlowError(FlowCode.FLOW_EXPIRED, "no PIN prompt")
    body = request.get_json(silent=True) or {}
    sealed = body.get("sealed")
    if not isinstance(sealed, dict):
        raise CardFlowError(FlowCode.PIN_FORMAT, "no sealed PIN")
    verified = cardflow.complete_pin(
        get_bus(current_app),
        verifier_for(current_app),
        terminal.id,
        prompt,
        sealed,
        bool(body.get("confirm_last_try")),
    )
    binding = db.session().get(CardBinding, card_key_bytes(verified.card_key))
    if binding is None:
        raise CardFlowError(FlowCode.NOT_REGISTERED)
    state["mykey"] = binding.mykey_id
    _save(terminal, state)
    balance = spend.spendable(db.session(), merchant.municipality_id, binding.mykey_id)
    return jsonify(points=state["points"], balance=balance, enough=balance >= state["points"])


@bp.post("/api/confirm")
@staff_required(Role.MERCHANT_STAFF)
def confirm() -> ResponseReturnValue:
    """The citizen confirmed: pay (a second confirm replays the first receipt)."""
    terminal, merchant = _need()
    state = _active(terminal, "mykey")
    receipt = spend.spend(
        db.session(), merchant.id, state["mykey"], state["points"], key=state["key"]
    )
    left = spend.spendable(db.session(), merchant.municipality_id, state["mykey"])
    return jsonify(points=receipt.points, balance=left, replayed=receipt.replayed)


@bp.post("/api/end")
@staff_required(Role.MERCHANT_STAFF)
def end() -> ResponseReturnValue:
    """Forget the payment in progress (next customer)."""
    _need()
    cookie.pop(FLOW, None)
    return jsonify(ok=True)
