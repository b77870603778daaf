"""Online shops' JSON API (/api/v1/shop): make a checkout, read it, refund it.

Authenticated as the partner API is (`Authorization: Bearer icm_...`, keys issued on
the officer's merchant page); errors in the partner API's format, in both languages.
No answer names who paid (rule 2): a checkout carries its amount, status and refunds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ... import db
from ...inputs import InputRefused, parse_json
from ..api import _error, _no_constant, worded
from ..errors import Code, InvalidInput, PointsError
from ..models import Merchant
from ..validation import strict_fields
from . import keys, services
from .services import CheckoutView, RefundView

log = logging.getLogger(__name__)
bp = Blueprint("checkout_api", __name__, url_prefix="/api/v1/shop")
MAX_BODY = 8 * 1024


def _merchant() -> Merchant:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return keys.authenticate(db.session(), token.strip() if scheme.lower() == "bearer" else None)


def _body(required: set[str]) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise InvalidInput(Code.INVALID_INPUT, f"body larger than {MAX_BODY} bytes")
    if request.mimetype != "application/json":
        raise InvalidInput(Code.INVALID_INPUT, "Content-Type must be application/json")
    raw = request.get_data(cache=False)
    try:
        body = parse_json(raw, max_bytes=MAX_BODY, parse_constant=_no_constant)
    except InputRefused as exc:
        detail = "the body is not valid JSON" if exc.reason == "not_json" else str(exc)
        raise InvalidInput(Code.INVALID_INPUT, detail) from None
    return strict_fields(body, required)


def checkout_json(c: CheckoutView) -> dict[str, Any]:
    """A checkout as the shop reads it (never who paid)."""
    return {
        "id": c.id,
        "reference": c.reference,
        "amount": c.amount,
        "status": c.status,
        "refunded": c.refunded,
        "return_url": c.return_url,
        "url": url_for("checkout.page", checkout_id=c.id, _external=False),
        "created_at": c.created_at.isoformat(),
        "expires_at": c.expires_at.isoformat(),
    }


def _with_origin(body: dict[str, Any]) -> dict[str, Any]:
    origin = str(current_app.config.get("PLATFORM_ORIGIN") or request.host_url).rstrip("/")
    return {**body, "url": origin + body["url"]}


def _refund_json(r: RefundView) -> dict[str, Any]:
    return {
        "checkout": r.checkout_id,
        "reference": r.reference,
        "amount": r.amount,
        "refunded": r.refunded,
        "refundable": r.refundable,
        "created_at": r.created_at.isoformat(),
    }


@bp.post("/checkouts")
def create() -> ResponseReturnValue:
    """A checkout for an order: 201, or 200 with the same one for a repeated request."""
    merchant = _merchant()
    body = _body({"amount", "reference", "return_url"})
    ttl = timedelta(seconds=float(current_app.config["CHECKOUT_TTL_SECONDS"]))
    c = services.create(
        db.session(),
        merchant,
        amount=body["amount"],
        order=body["reference"],
        return_url=body["return_url"],
        ttl=ttl,
    )
    return jsonify(checkout=_with_origin(checkout_json(c))), 200 if c.replayed else 201


@bp.get("/checkouts/<checkout_id>")
def show(checkout_id: str) -> ResponseReturnValue:
    """One of this shop's checkouts."""
    merchant = _merchant()
    s = db.session()
    c = services.view(s, services.get_for_merchant(s, merchant, checkout_id))
    return jsonify(checkout=_with_origin(checkout_json(c)))


@bp.post("/checkouts/<checkout_id>/refunds")
def refund(checkout_id: str) -> ResponseReturnValue:
    """Refund part or all of a paid checkout: 201, or 200 for a repeated reference."""
    merchant = _merchant()
    body = _body({"amount", "reference"})
    r = services.refund(
        db.session(), merchant, checkout_id, amount=body["amount"], ref=body["reference"]
    )
    return jsonify(refund=_refund_json(r)), 200 if r.replayed else 201


@bp.errorhandler(PointsError)
def points_error(exc: PointsError) -> Response:
    """A domain error as JSON with its status."""
    db.session().rollback()
    response = _error(exc.status, worded(exc.as_dict()))
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ichimai-shops"'
    return response


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (404, 405, 413, ...) as JSON too."""
    code = exc.code or 500
    return _error(code, {"code": f"http_{code}", "message": exc.name, "message_ja": exc.name})


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    """Anything else: logged here, a plain 500 there (no traceback leaves the server)."""
    log.exception("shop API failure")
    db.session().rollback()
    return _error(500, worded({"code": "internal"}))


@bp.after_request
def no_store(response: Response) -> Response:
    """Checkouts are not for caches."""
    response.headers["Cache-Control"] = "no-store"
    return response
