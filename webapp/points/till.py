"""The merchant's till (加盟店レジ, /points/terminal): the pages, and the `pay` purpose of
the one card flow.

A till is a terminal of kind `merchant` that names its merchant (`Terminal.merchant_id`,
set by an admin on /admin/terminals); only that merchant's staff open it
(`cardflow.binding.may_open`), and every request checks the binding again, so a till
moved to another merchant is closed to the old merchant's staff at once.

/points/terminal/tills lists the staff member's own merchant's tills (name, reader
online) with an "open this till" button each (a POST with the CSRF token); with exactly
one till it opens that one at once, so a shop with one till never sees a list.

The payment (`PayPurpose`, purpose `pay`) runs through the card flow's one API
(/flow/...): the amount (staff) begins it, the citizen's card and PIN verify it, then
`/flow/do/confirm` pays and `/flow/do/refund` gives it back while the citizen is still
there. The paying citizen's MyKey ID stays in the flow on the server: the shop's
browser sees the amount, the balance and the receipt only (rule 2). The idempotency
key is made at the flow's start: a double confirm is one payment.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    url_for,
)
from flask import session as web_session
from flask.typing import ResponseReturnValue
from sqlalchemy import Select, select

from .. import db
from ..bus import get_bus
from ..cardflow.binding import bind_staff_terminal, current_terminal, may_open
from ..cardflow.purposes import BasePurpose, FlowContext, Outcome, PurposeError
from ..identity.models import CardBinding
from ..identity.services import card_key_bytes
from ..jpki import VerifiedCard
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..terminals import online_window
from ..terminals.models import BridgeDevice, Terminal, TerminalKind, utcnow
from ..terminals.registry import workers_alive
from ..terminals.services import is_online
from . import spend
from .errors import Code, InvalidInput
from .models import Merchant

bp = Blueprint("points_terminal", __name__, url_prefix="/points/terminal")
PURPOSE = "pay"
# A merchant with more tills than this (a bus fleet) needs a search box, not a list.
TILLS_SHOWN = 200
# The most points one payment takes (a sanity bound on what staff type).
MAX_POINTS = 10_000_000
# A payment waits this long for the customer's PIN and confirmation.
IDLE_SECONDS = 180.0


def merchant_for(terminal: Terminal) -> int | None:
    """The merchant a merchant terminal belongs to (None: not a till, or not bound)."""
    return terminal.merchant_id if terminal.kind == TerminalKind.MERCHANT else None


def _bound() -> tuple[Terminal, Merchant] | None:
    """This tab's till and its merchant, if the binding still holds."""
    terminal = current_terminal()
    if terminal is None or terminal.kind != TerminalKind.MERCHANT:
        return None
    merchant = db.session().get(Merchant, terminal.merchant_id)
    return None if merchant is None else (terminal, merchant)


@dataclass(frozen=True)
class TillRow:
    """A till as its merchant's staff pick it: the reader is online, offline or unpaired."""

    terminal: Terminal
    reader: str  # "online" | "offline" | "unpaired"
    open_here: bool


def _merchant_tills(merchant_id: int) -> Select[tuple[Terminal]]:
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
    terminals = list(s.scalars(_merchant_tills(merchant_id).limit(TILLS_SHOWN)))
    bridges: dict[int, list[BridgeDevice]] = {}
    if terminals:
        active = select(BridgeDevice).where(
            BridgeDevice.terminal_id.in_([t.id for t in terminals]),
            BridgeDevice.revoked_at.is_(None),
        )
        for device in s.scalars(active):
            bridges.setdefault(device.terminal_id, []).append(device)
    now, window = utcnow(), online_window(current_app)
    alive = workers_alive(
        get_bus(current_app), (d.connected_worker for ds in bridges.values() for d in ds)
    )
    here = web_session.get("terminal_id")
    rows = []
    for t in terminals:
        devices = bridges.get(t.id, [])
        if any(is_online(d, now, window, alive) for d in devices):
            reader = "online"
        else:
            reader = "offline" if devices else "unpaired"
        rows.append(TillRow(t, reader, open_here=t.id == here))
    return rows


def tills_for(merchant_id: int | None) -> list[TillRow]:
    """The merchant's tills with their readers' presence (the staff home lists them too)."""
    return _tills(merchant_id)


@bp.get("/tills")
@staff_required(Role.MERCHANT_STAFF)
def tills() -> ResponseReturnValue:
    """This merchant's tills to open; with exactly one, it is opened at once."""
    user = current_staff()
    assert user is not None  # noqa: S101 - staff_required
    rows = _tills(user.merchant_id)
    if len(rows) == 1:
        # Binding the tab on a GET only ever picks the staff member's own (single) till:
        # nothing a forged link could abuse (a payment needs the customer's card and PIN).
        if not rows[0].open_here:
            bind_staff_terminal(rows[0].terminal)
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
    if terminal is None or not may_open(current_staff(), terminal):
        abort(404)  # another merchant's till: as if it did not exist
    bind_staff_terminal(terminal)
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
        if web_session.get("terminal_kind") != TerminalKind.MERCHANT:
            return redirect(url_for(".tills"))
        user = current_staff()
        rows = _tills(user.merchant_id if user is not None else None)
        return _tills_page(rows, lost=True), 403
    terminal, merchant = bound
    others = len(db.session().scalars(_merchant_tills(merchant.id).limit(2)).all()) > 1
    return render_template(
        "points/terminal.html", terminal=terminal, merchant=merchant, other_tills=others
    )


# -- the payment: the `pay` purpose of the card flow ------------------------------------


def _merchant(ctx: FlowContext) -> Merchant:
    merchant = ctx.s.get(Merchant, ctx.terminal.merchant_id)
    if merchant is None:
        raise PurposeError("wrong_terminal", status=403, final=True)
    return merchant


def _receipt(points: int, balance: int, *, replayed: bool = False) -> dict[str, Any]:
    return {"points": points, "balance": balance, "replayed": replayed}


class PayPurpose(BasePurpose):
    """A payment at a till: amount, card and PIN, confirmation, receipt (and refund)."""

    name = PURPOSE
    terminal_kinds = frozenset({TerminalKind.MERCHANT})
    idle = IDLE_SECONDS

    def start(self, ctx: FlowContext, params: Mapping[str, Any]) -> dict[str, Any]:
        """The amount the staff typed, and the payment's idempotency key (made here)."""
        _merchant(ctx)
        points = params.get("points")
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
            raise InvalidInput(Code.INVALID_AMOUNT)
        return {"points": points, "key": uuid.uuid4().hex}

    def verified(self, ctx: FlowContext, card: VerifiedCard, data: dict[str, Any]) -> Outcome:
        """The customer's spendable balance here, to confirm (who they are stays here)."""
        binding = ctx.s.get(CardBinding, card_key_bytes(card.card_key))
        if binding is None:
            raise PurposeError("not_registered", final=True)
        merchant = _merchant(ctx)
        balance = spend.spendable(ctx.s, merchant.municipality_id, binding.mykey_id)
        data = {**data, "mykey": binding.mykey_id}
        body = {"points": data["points"], "balance": balance, "enough": balance >= data["points"]}
        return Outcome(body, data)

    def act(
        self, ctx: FlowContext, name: str, data: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        """`confirm` pays (a second confirm replays the receipt); `refund` gives it back."""
        merchant = _merchant(ctx)
        if name == "confirm":
            receipt = spend.spend(
                ctx.s, merchant.id, data["mykey"], data["points"], key=data["key"]
            )
            left = spend.spendable(ctx.s, merchant.municipality_id, data["mykey"])
            data = {**data, "paid": receipt.transfer_id}
            return Outcome(_receipt(receipt.points, left, replayed=receipt.replayed), data, True)
        if name == "refund":
            if "paid" not in data:
                raise PurposeError("out_of_order", status=409)
            refunded = spend.refund(
                ctx.s, merchant.id, data["paid"], data["points"], key=f"till:{data['key']}"
            )
            left = spend.spendable(ctx.s, merchant.municipality_id, data["mykey"])
            data = {**data, "refunded": refunded.transfer_id}
            body = {"refunded": refunded.points, "balance": left, "replayed": refunded.replayed}
            return Outcome(body, data, True)
        raise PurposeError("unknown_step", status=404)

    def view(self, ctx: FlowContext, data: dict[str, Any]) -> dict[str, Any]:
        """The amount only (the balance is asked again at the next step)."""
        return {"points": data.get("points")}
