"""JSON API: bridge pairing (public, needs a code) and the admin actions on terminals.

Admin routes take `Authorization: Bearer <ICHIMAI_ADMIN_TOKEN>` for now; staff sign-in
replaces the token in the next issue. Errors are `{"error": {"code", "message"}}`.

Pairing is throttled (terminals/throttle.py): every request takes an attempt per client
address and overall before its code is looked up, and only wrong codes keep theirs
(Redis when the bus is Redis, so every worker sees the same counts); over a limit the
answer is 429 with Retry-After, even for a correct code, until the window has moved on.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from bridge import jpki
from bridge.errors import CardError, TransportError
from bridge.transport import drive
from bridge.wire import unb64u

from .. import db
from ..bus import get_bus
from ..inputs.web import json_body
from . import get_registry, online_window, services
from .errors import InvalidRequest, PairingError, TerminalsError
from .models import Terminal, utcnow
from .registry import workers_alive
from .remote import RemoteTransport, bridge_status
from .throttle import PairingThrottle

bp = Blueprint("terminals_api", __name__, url_prefix="/api/v1")

STATUS_TIMEOUT = 2.0


@bp.errorhandler(TerminalsError)
def _terminals_error(exc: TerminalsError) -> ResponseReturnValue:
    return jsonify(error={"code": exc.code, "message": str(exc)}), exc.status


def _body() -> dict[str, Any]:
    body = json_body()  # InputRefused (400) if malformed or out of bounds
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
    """The app's pairing throttle (made by `terminals.init_app` from PAIR_* and BUS_URL)."""
    throttle: PairingThrottle = app.extensions["bridge_pair_throttle"]
    return throttle


@bp.post("/bridges/pair")
def pair() -> ResponseReturnValue:
    """Exchange a one-time pairing code and two public keys for an enrolled bridge.

    429 with Retry-After after too many wrong codes from this address (or from everyone).
    """
    throttle = pairing_throttle(current_app)
    address = request.remote_addr
    # The attempt is counted before the code is looked up (webapp/throttle.py).
    wait = throttle.begin(address)
    if wait:
        message = _("Too many failed pairing attempts. Please wait and try again.")
        response = jsonify(
            error={"code": "too_many_attempts", "message": message, "retry_after": wait}
        )
        response.headers["Retry-After"] = str(wait)
        return response, 429
    s = db.session()
    try:
        body = _body()
        paired = services.pair(
            s,
            _string(body, "code"),
            _string(body, "auth_public_key"),
            _string(body, "seal_public_key"),
            name=_string(body, "name", required=False),
        )
    except PairingError:
        raise  # a refused code keeps its attempt
    except BaseException:
        throttle.not_a_guess(address)  # a malformed body (or our error) guessed nothing
        raise
    throttle.not_a_guess(address)  # paired: a good code costs nothing
    registry = get_registry(current_app)
    for old in paired.replaced:
        registry.cut_off(old)
    terminal = services.get_terminal(s, paired.bridge.terminal_id)
    return jsonify(bridge_id=paired.bridge.id, terminal=_terminal_json(terminal)), 201


def server_time() -> float:
    """The platform's clock, as a bridge's status check compares its own with it."""
    return time.time()


def _b64u_field(body: dict[str, Any], key: str, low: int, high: int) -> bytes:
    try:
        raw = unb64u(_string(body, key))
    except ValueError:
        raise InvalidRequest(f"{key} must be base64url") from None
    if not low <= len(raw) <= high:
        raise InvalidRequest(f"{key} must be {low}-{high} bytes")
    return raw


@bp.post("/bridges/check")
def check_bridge() -> ResponseReturnValue:
    """A bridge asks about itself (`ichimai-bridge status`): still allowed or revoked,
    connected or not, and the platform's clock. Signed with its key (own nonce):
    401 `unauthorized` for an unknown bridge or a bad signature, as at connect time."""
    body = _body()
    bridge_id = _string(body, "bridge_id")
    if len(bridge_id) > 40:
        raise InvalidRequest("bridge_id is too long")
    nonce = _b64u_field(body, "nonce", 16, 64)
    signature = _b64u_field(body, "signature", 64, 64)
    device = services.check_signed(
        db.session(), bridge_id, current_app.config["PLATFORM_ORIGIN"], nonce, signature
    )
    online = False
    if device.revoked_at is None:  # asked live, as the admin's view does: not the last flush
        try:
            status = bridge_status(get_bus(current_app), device.terminal_id, STATUS_TIMEOUT)
        except TransportError:
            status = None
        online = status is not None and status.bridge_id == device.id
    return jsonify(
        bridge_id=device.id,
        terminal_id=device.terminal_id,
        state="revoked" if device.revoked_at is not None else "active",
        online=online,
        server_time=server_time(),
    )


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
    alive = workers_alive(get_bus(current_app), (d.connected_worker for d in devices))
    return jsonify(bridges=[services.bridge_view(d, now, window, alive) for d in devices])


@bp.get("/admin/bridges/<bridge_id>")
def get_bridge(bridge_id: str) -> ResponseReturnValue:
    """One bridge, with its readers and cards when it is connected (asked over the bus)."""
    _require_admin()
    device = services.get_bridge(db.session(), bridge_id)
    alive = workers_alive(get_bus(current_app), [device.connected_worker])
    view = services.bridge_view(device, utcnow(), online_window(current_app), alive)
    view["readers"] = None
    if device.revoked_at is None:
        try:
            status = bridge_status(get_bus(current_app), device.terminal_id, STATUS_TIMEOUT)
        except TransportError:
            status = None
        if status is not None and status.bridge_id == device.id:
            view["online"] = True
            view["readers"] = [
                {"name": r.name}
                if r.card is None
                else {"name": r.name, "atr": r.card.atr.hex().upper(), "epoch": r.card.epoch}
                for r in status.readers
            ]
        else:
            view["online"] = False
    return jsonify(view)


@bp.post("/admin/bridges/<bridge_id>/revoke")
def revoke(bridge_id: str) -> ResponseReturnValue:
    """Revoke a bridge and cut its connection off at once, on whichever worker holds it."""
    _require_admin()
    device = services.revoke(db.session(), bridge_id)
    get_registry(current_app).cut_off(device.id, terminal_id=device.terminal_id)
    return jsonify(
        id=device.id, revoked_at=device.revoked_at.isoformat() if device.revoked_at else None
    )
