"""The platform's checkout page (/checkout/<id>): the shop's name, the amount and the
order reference; pay with the card and PIN through this browser's own card reader
(the home terminal, webapp/kiosk/home.py), or cancel; then back to the shop with the
signed result.

A browser without a paired card reader is told how to set one up at /home (then this
page works). A checkout that is no longer open shows why, with the way back to the shop.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template
from flask.typing import ResponseReturnValue

from ... import db
from ...catalogue import error_body
from ...kiosk.home_binding import owned_terminal
from ...terminals import services as terminal_services
from ..errors import PointsError
from ..reports import JST
from . import services
from .results import signed_result

bp = Blueprint("checkout", __name__, url_prefix="/checkout")


def _found(checkout_id: str) -> services.Checkout:
    try:
        return services.get(db.session(), checkout_id)
    except PointsError:
        abort(404)


@bp.get("/<checkout_id>")
def page(checkout_id: str) -> ResponseReturnValue:
    """The checkout: pay, cancel, or why it is closed."""
    s = db.session()
    c = _found(checkout_id)
    shown = services.view(s, c)
    terminal, _ = owned_terminal()
    ready = terminal is not None and terminal_services.home_paired(s, terminal.id)
    return render_template(
        "checkout/page.html",
        checkout=shown,
        ready=ready,
        expires=shown.expires_at.astimezone(JST).strftime("%H:%M"),
    )


@bp.post("/<checkout_id>/cancel")
def cancel(checkout_id: str) -> ResponseReturnValue:
    """Cancel an open checkout (JSON, CSRF header): where to go back to, signed
    `cancelled` (checkout.js goes there: a form's redirect to the shop would be blocked
    by the page's CSP form-action)."""
    s = db.session()
    c = _found(checkout_id)
    try:
        services.cancel(s, c.id)
    except PointsError as exc:
        s.rollback()
        body = error_body(exc.code.value, audience="home", final=True)
        return jsonify(error=body, redirect=signed_result(s, _found(checkout_id))), exc.status
    return jsonify(redirect=signed_result(s, _found(checkout_id)))


@bp.get("/<checkout_id>/back")
def back(checkout_id: str) -> ResponseReturnValue:
    """Back to the shop with the signed result of a checkout that is no longer open."""
    s = db.session()
    c = _found(checkout_id)
    if services.status_of(c, services.utc_now()) == "open":
        return redirect(f"/checkout/{c.id}")
    return redirect(signed_result(s, c), code=303)
