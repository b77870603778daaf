"""Merchant terminal (/points/terminal): amount, card, sealed PIN, confirm, receipt.

Thin: the card steps are `webapp.cardflow`, the payment is `spend.spend`. A merchant
terminal names its merchant (`Terminal.merchant_id`, set by an admin on /admin/terminals);
only that merchant's staff open it, and every request checks the binding again, so a
till moved to another merchant is closed to the old merchant's staff at once.
The idempotency key is made here at flow start: a double confirm is one payment.

/points/terminal/tills lists the staff member's own merchant's tills (name, reader
online) with an "open this till" button each (a POST with the CSRF token); with exactly
one till it opens that one at once, so a shop with one till never sees a list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
from sqlalchemy import Select, select

from .. import db
from ..bus import get_bus
from ..cardflow import CardFlowError, FlowCode, error_body, verifier_for
from ..cardflow import services as cardflow
from ..identity.models import CardBinding
from ..identity.services import card_key_bytes
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..terminals import online_window
from ..terminals.models import BridgeDevice, Terminal, TerminalKind, utcnow
from ..terminals.services import is_online
from . import spend
from .errors import Code, InvalidInput, PointsError
from .models import Merchant

bp = Blueprint("points_terminal", __name__, url_prefix="/points/terminal")
PURPOSE = "pay"
FLOW = "points_terminal"
# A merchant with more tills than this (a bus fleet) needs a search box, not a list.
TILLS_SHOWN = 200


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


@dataclass(frozen=True)
class TillRow:
    """A till as its merchant's staff pick it: the reader is online, offline or unpaired."""

    terminal: Terminal
    reader: str  # "online" | "offline" | "unpaired"
    open_here: bool


def _mine(merchant_id: int) -> Select[Terminal]:
    """The merchant's tills, by name (terminals.merchant_id is indexed)."""
    return (
        select(Terminal)
        .where(Terminal.kind == TerminalKind.MERCHANT, Terminal.merchant_id == merchant_id)
        .order_by(Terminal.name, Terminal.id)
    )


def _tills(merchant_id: int | None) -> list[TillRow]:
    """The merchant's tills by name, with their readers' presence (two indexed queries)."""
    if merchant_id is None:
        return []
    s = db.session()
    terminals = list(s.scalars(_mine(merchant_id).limit(TILLS_SHOWN)))
    bridges: dict[int, list[BridgeDevice]] = {}
    if terminals:
        active = select(BridgeDevice).where(
            BridgeDevice.terminal_id.in_([t.id for t in terminals]),
            BridgeDevice.revoked_at.is_(None),
        )
        for device in s.scalars(active):
            bridges.setdefault(device.terminal_id, []).append(device)
    now, window = utcnow(), online_window(current_app)
    here = cookie.get("points_terminal_id")
    rows = []
    for t in terminals:
        devices = bridges.get(t.id, [])
        if any(is_online(d, now, window) for d in devices):
            reader = "online"
        else:
            reader = "offline" if devices else "unpaired"
        rows.append(TillRow(t, reader, open_here=t.id == here))
    return rows


def _open(terminal: Terminal) -> None:
    """Bind this tab to `terminal`, with no payment in progress."""
    cookie["points_terminal_id"] = terminal.id
    cookie.pop(FLOW, None)


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


@bp.get("/tills")
@staff_required(Role.MERCHANT_STAFF)
def tills() -> ResponseReturnValue:
    """This merchant's tills to open; with exactly one, it is opened at once."""
    user = current_staff()
    assert user is not None  # noqa: S101 - staff_required
    rows = _tills(user.merchant_id)
    if len(rows) == 1:
        # Binding the tab on a GET only ever picks the staff member's own (single) till,
        # and leaves a payment in progress on it alone: nothing a forged link could abuse.
        if not rows[0].open_here:
            _open(rows[0].terminal)
        return redirect(url_for(".index"))
    return _tills_page(rows)


def _tills_page(rows: list[TillRow], *, lost: bool = False) -> str:
    user = current_staff()
    merchant = None
    if user is not None and user.merchant_id is not None:
        merchant = db.session().get(Merchant, user.merchant_id)
    return render_template(
        "points/tills.html", rows=rows, merchant=merchant, lost=lost, capped=TILLS_SHOWN
    )


@bp.post("/open/<int:terminal_id>")
@staff_required(Role.MERCHANT_STAFF)
def open_terminal(terminal_id: int) -> ResponseReturnValue:
    """Open this merchant's terminal in the staff member's tab."""
    terminal = db.session().get(Terminal, terminal_id)
    user = current_staff()
    if terminal is None or user is None or user.merchant_id is None:
        abort(404)
    if merchant_for(terminal) != user.merchant_id:
        abort(404)  # another merchant's till: as if it did not exist
    _open(terminal)
    return redirect(url_for("points_terminal.index"))


@bp.get("/")
@staff_required(Role.MERCHANT_STAFF)
def index() -> ResponseReturnValue:
    """The terminal page (screens switched by points_terminal.js); else pick a till.

    A tab whose till was taken away (moved to another merchant) gets 403 with the list
    of the tills it may open instead, and a word on why.
    """
    bound = _bound()
    if bound is None:
        if "points_terminal_id" not in cookie:
            return redirect(url_for(".tills"))
        user = current_staff()
        rows = _tills(user.merchant_id if user is not None else None)
        return _tills_page(rows, lost=True), 403
    terminal, merchant = bound
    others = len(db.session().scalars(_mine(merchant.id).limit(2)).all()) > 1
    return render_template(
        "points/terminal.html", terminal=terminal, merchant=merchant, other_tills=others
    )


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
