"""Partner JSON API (地域経済応援ポイント): convert, look up and cancel conversions.

Thin: parse, authenticate, call webapp.points.conversion, render. Errors are JSON
`{"error": {"code", "message", "message_ja", "detail"?}}` with a 4xx status, never a
traceback; a refused request changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from .. import db
from ..catalogue import text
from ..inputs import InputRefused, parse_json
from . import conversion, partners
from .conversion import ConversionResult
from .directory import CitizenDirectory
from .errors import Code, InvalidInput, PointsError
from .models import ConversionTerms, Municipality, Partner
from .validation import strict_fields

log = logging.getLogger(__name__)
bp = Blueprint("points_api", __name__, url_prefix="/api/v1/partners")
MAX_BODY = 16 * 1024  # a conversion request is ~200 bytes; refuse anything much larger


def _partner() -> Partner:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return partners.authenticate(
        db.session(), token.strip() if scheme.lower() == "bearer" else None
    )


def _directory() -> CitizenDirectory:
    directory: CitizenDirectory = current_app.extensions["points_directory"]
    return directory


def _body() -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise InvalidInput(Code.INVALID_INPUT, f"body larger than {MAX_BODY} bytes")
    if request.mimetype != "application/json":
        raise InvalidInput(Code.INVALID_INPUT, "Content-Type must be application/json")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        raise InvalidInput(Code.INVALID_INPUT, f"body larger than {MAX_BODY} bytes")
    try:
        # parse_constant refuses NaN/Infinity; ValueError also covers ints too long to read.
        body = parse_json(raw, max_bytes=MAX_BODY, parse_constant=_no_constant)
    except InputRefused as exc:
        detail = "the body is not valid JSON" if exc.reason == "not_json" else str(exc)
        raise InvalidInput(Code.INVALID_INPUT, detail) from None
    return strict_fields(body, {"municipality", "mykey_id", "partner_points", "reference"})


def _no_constant(name: str) -> object:
    raise ValueError(name)


def _conversion_json(result: ConversionResult) -> dict[str, Any]:
    return {
        "reference": result.reference,
        "municipality": result.municipality,
        "mykey_id": result.mykey_id,
        "partner_points": result.partner_points,
        "base_points": result.base_points,
        "bonus_points": result.bonus_points,
        "bonus_asked": result.bonus_asked,
        "points": result.points,
        "status": result.status,
        "hold_until": result.hold_until.isoformat(),
        "created_at": result.created_at.isoformat(),
        "replayed": result.replayed,
    }


@bp.post("/conversions")
def convert() -> ResponseReturnValue:
    """Convert partner points of a MyKey ID holder; 201 first time, 200 on a replay."""
    partner = _partner()
    body = _body()
    if not isinstance(body["municipality"], str):
        raise InvalidInput(Code.INVALID_INPUT, "municipality: the 6-digit code as a string")
    result = conversion.convert(
        db.session(),
        partner,
        municipality_code=body["municipality"],
        citizen=body["mykey_id"],
        partner_points=body["partner_points"],
        ref=body["reference"],
        directory=_directory(),
    )
    return jsonify(conversion=_conversion_json(result)), 200 if result.replayed else 201


@bp.get("/conversions/<ref>")
def show(ref: str) -> ResponseReturnValue:
    """One of this partner's conversions by its reference."""
    partner = _partner()
    return jsonify(conversion=_conversion_json(conversion.status(db.session(), partner, ref)))


@bp.post("/conversions/<ref>/cancel")
def cancel(ref: str) -> ResponseReturnValue:
    """Void a conversion still held; 409 once it is posted."""
    partner = _partner()
    return jsonify(conversion=_conversion_json(conversion.cancel(db.session(), partner, ref)))


@bp.get("/municipalities")
def municipalities() -> ResponseReturnValue:
    """The municipalities taking this partner's points, with their terms."""
    partner = _partner()
    rows = db.session().execute(
        select(Municipality, ConversionTerms)
        .join(ConversionTerms, ConversionTerms.municipality_id == Municipality.id)
        .where(ConversionTerms.partner_id == partner.id, ConversionTerms.active.is_(True))
        .order_by(Municipality.code)
    )
    return jsonify(
        municipalities=[
            {
                "code": m.code,
                "name": m.name,
                "rate": [t.rate_num, t.rate_den],
                "bonus_bp": t.bonus_bp,
                "min_unit": t.min_unit,
                "hold_days": t.hold_days,
            }
            for m, t in rows
        ]
    )


def _error(status: int, body: dict[str, object]) -> Response:
    response = jsonify(error=body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ichimai-partners"'
    return response


def worded(body: dict[str, Any]) -> dict[str, Any]:
    """An error body with its message in English and Japanese (partners read both)."""
    code = str(body["code"])
    out = {**body, "message": text(code, "en"), "message_ja": text(code, "ja")}
    if isinstance(body.get("errors"), list):
        out["errors"] = [worded(e) for e in body["errors"]]
    return out


@bp.errorhandler(PointsError)
def points_error(exc: PointsError) -> Response:
    """A domain error as JSON with its status."""
    db.session().rollback()
    return _error(exc.status, worded(exc.as_dict()))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (405, 413, ...) as JSON too."""
    code = exc.code or 500
    return _error(code, {"code": f"http_{code}", "message": exc.name, "message_ja": exc.name})


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    """Anything else: logged here, a plain 500 there (no traceback leaves the server)."""
    log.exception("points API failure")
    db.session().rollback()
    return _error(500, worded({"code": "internal"}))


@bp.after_request
def no_store(response: Response) -> Response:
    """Balances and conversions are not for caches."""
    response.headers["Cache-Control"] = "no-store"
    return response
