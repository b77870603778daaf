"""JSON API: bridge pairing (public, needs a code) and the admin actions on terminals.

Admin routes take `Authorization: Bearer <ICHIMAI_ADMIN_TOKEN>` for now; staff sign-in
replaces the token in the next issue. Errors are `{"error": {"code", "message"}}`.

Pairing is throttled: wrong codes are counted per client IP and overall (Redis when the
bus is Redis, so every worker sees the same counts); over the limit the answer is 429
with Retry-After, even for a correct code, until the window has moved on.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from bridge import jpki
from bridge.errors import CardError
from bridge.transport import drive

from .. import db
from ..bus import BusError, get_bus
from ..staff.throttle import PairingThrottle, storage_uri
from ..terminals import get_registry, online_window, services
from ..terminals.errors import InvalidRequest, PairingError, TerminalsError
from ..terminals.models import Terminal, utcnow
from ..terminals.registry import command_channel
from ..terminals.remote import RemoteTransport

bp = Blueprint("terminals_api", __name__, url_prefix="/api/v1")

STATUS_TIMEOUT = 2.0
_throttle_lock = threading.Lock()


@bp.errorhandler(TerminalsError)
def _terminals_error(exc: TerminalsError) -> ResponseReturnValue:
    return jsonify(error={"code": exc.code, "message": str(exc)}), exc.status


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("expected a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value):
        raise InvalidRequest(f"{key} must be a non-empty string")
    return value


def _optional_id(body: dict[str, Any], key: str) -> int | None:
    """An optional integer id (absent or null: None); anything else is InvalidRequest."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{key} must be an integer")
    return value


def _require_admin() -> None:
    expected = current_app.config.get("ADMIN_TOKEN") or os.environ.get("ICHIMAI_ADMIN_TOKEN")
    if not expected:
        abort(503, description="admin API disabled: set ICHIMAI_ADMIN_TOKEN")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        abort(401)


def _terminal_json(t: Terminal) -> dict[str, Any]:
    return {
        "id": t.id,
        "provider_id": t.provider_id,
        "kind": t.kind,
        "name": t.name,
        "merchant_id": t.merchant_id,
    }


# -- pairing (the bridge calls this) --------------------------------------------------


def pairing_throttle(app: Flask) -> PairingThrottle:
    """The app's pairing throttle, made on first use from PAIR_* settings and BUS_URL."""
    throttle: PairingThrottle | None = app.extensions.get("bridge_pair_throttle")
    if throttle is None:
        with _throttle_lock:
            throttle = app.extensions.get("bridge_pair_throttle")
            if throttle is None:
                throttle = PairingThrottle(
                    app.config.get("PAIR_THROTTLE_STORAGE")
                    or storage_uri(app.config.get("BUS_URL")),
                    per_ip=app.config.get("PAIR_LIMIT_PER_IP", "10 per 10 minutes"),
                    overall=app.config.get("PAIR_LIMIT_OVERALL", "500 per 10 minutes"),
                )
                app.extensions["bridge_pair_throttle"] = throttle
    return throttle


@bp.post("/bridges/pair")
def pair() -> ResponseReturnValue:
    """Exchange a one-time pairing code and two public keys for an enrolled bridge.

    429 with Retry-After after too many wrong codes from this IP (or from everyone).
    """
    throttle = pairing_throttle(current_app)
    ip = request.remote_addr or "unknown"
    wait = throttle.retry_after_for(ip)
    if wait:
        message = _("Too many failed pairing attempts. Please wait and try again.")
        response = jsonify(
            error={"code": "too_many_attempts", "message": message, "retry_after": wait}
        )
        response.headers["Retry-After"] = str(wait)
        return response, 429
    body = _body()
    s = db.session()
    try:
        paired = services.pair(
            s,
            _string(body, "code"),
            _string(body, "auth_public_key"),
            _string(body, "seal_public_key"),
            name=_string(body, "name", required=False),
        )
    except PairingError:
        throttle.failed(ip)  # only a refused code counts; a malformed body guesses nothing
        raise
    registry = get_registry(current_app)
    for old in paired.replaced:
        registry.cut_off(old)
    terminal = services.get_terminal(s, paired.bridge.terminal_id)
    return jsonify(bridge_id=paired.bridge.id, terminal=_terminal_json(terminal)), 201


# -- admin -----------------------------------------------------------------------------


@bp.post("/admin/terminals")
def create_terminal() -> ResponseReturnValue:
    """Add a terminal: {provider_id, kind: counter|kiosk|merchant, name, merchant_id?}.

    A shop till (kind `merchant`) names its merchant; a counter or kiosk names none
    (400 `merchant_required`, `merchant_not_allowed` or `unknown_merchant`).
    """
    _require_admin()
    body = _body()
    provider_id = body.get("provider_id")
    if not isinstance(provider_id, int) or isinstance(provider_id, bool):
        raise InvalidRequest("provider_id must be an integer")
    terminal = services.create_terminal(
        db.session(),
        provider_id,
        _string(body, "kind"),
        _string(body, "name"),
        merchant_id=_optional_id(body, "merchant_id"),
    )
    return jsonify(_terminal_json(terminal)), 201


@bp.get("/admin/terminals/<int:terminal_id>")
def get_terminal(terminal_id: int) -> ResponseReturnValue:
    """One terminal."""
    _require_admin()
    return jsonify(_terminal_json(services.get_terminal(db.session(), terminal_id)))


@bp.post("/admin/terminals/<int:terminal_id>/pairing-codes")
def create_pairing_code(terminal_id: int) -> ResponseReturnValue:
    """A one-time pairing code for the terminal (shown once; 10 minutes; single use)."""
    _require_admin()
    issued = services.create_pairing_code(db.session(), terminal_id)
    return jsonify(
        code=issued.code, terminal_id=terminal_id, expires_at=issued.expires_at.isoformat()
    ), 201


@bp.post("/admin/terminals/<int:terminal_id>/probe")
def probe(terminal_id: int) -> ResponseReturnValue:
    """Check the terminal's reader: read the certificate through the bridge, say how long.

    Answers sizes and timings only, never the certificate (rule 3: no card identifiers).
    """
    _require_admin()
    services.get_terminal(db.session(), terminal_id)
    transport = RemoteTransport(get_bus(current_app), terminal_id)
    started = time.perf_counter()
    try:
        certificate = drive(jpki.read_certificate(), transport)
    except CardError as exc:
        return jsonify(error={"code": exc.code.value, "message": str(exc)}), 503
    return jsonify(
        ok=True,
        reader=transport.reader,
        epoch=transport.epoch,
        certificate_bytes=len(certificate),
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )


@bp.get("/admin/bridges")
def list_bridges() -> ResponseReturnValue:
    """Bridges with last-seen and online, by id (`?terminal_id=`, `?after=`, `?limit=`)."""
    _require_admin()
    terminal_id = request.args.get("terminal_id", type=int)
    limit = request.args.get("limit", default=500, type=int)
    devices = services.list_bridges(
        db.session(), terminal_id=terminal_id, limit=limit, after=request.args.get("after")
    )
    now, window = utcnow(), online_window(current_app)
    return jsonify(bridges=[services.bridge_view(d, now, window) for d in devices])


@bp.get("/admin/bridges/<bridge_id>")
def get_bridge(bridge_id: str) -> ResponseReturnValue:
    """One bridge, with its readers and cards when it is connected (asked over the bus)."""
    _require_admin()
    device = services.get_bridge(db.session(), bridge_id)
    view = services.bridge_view(device, utcnow(), online_window(current_app))
    view["readers"] = None
    if device.revoked_at is None:
        try:
            status = get_bus(current_app).request(
                command_channel(device.terminal_id), {"op": "status"}, STATUS_TIMEOUT
            )
        except BusError:
            status = {}
        if status.get("bridge_id") == device.id:
            view["online"] = True
            view["readers"] = status.get("readers")
        else:
            view["online"] = False
    return jsonify(view)


@bp.post("/admin/bridges/<bridge_id>/revoke")
def revoke(bridge_id: str) -> ResponseReturnValue:
    """Revoke a bridge and cut its connection off at once, on whichever worker holds it."""
    _require_admin()
    device = services.revoke(db.session(), bridge_id)
    get_registry(current_app).cut_off(device.id)
    return jsonify(
        id=device.id, revoked_at=device.revoked_at.isoformat() if device.revoked_at else None
    )
