"""Kiosk JSON API: card, PIN (sealed in the browser), MyKey ID, re-roll, links.

Every call after the card was read checks, server side, that the same card session is
still on the reader and that the kiosk was not idle too long; otherwise the flow ends
(`session_ended` / `card_removed`). Thin: parse, call cardflow and identity services.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from .. import db
from ..bus import get_bus
from ..cardflow import services as cardflow
from ..cardflow.binding import (
    clear_flow,
    current_terminal,
    load_flow,
    save_flow,
    terminal_required,
)
from ..cardflow.errors import CardFlowError, FlowCode
from ..cardflow.messages import error_body
from ..identity import services as identity
from ..identity.errors import IdentityError
from ..identity.models import MyKeyID
from ..providers.models import Provider
from ..terminals.models import TerminalKind
from .points import my_points

bp = Blueprint("kiosk_api", __name__, url_prefix="/kiosk/api")

PURPOSE = "kiosk"
F = TypeVar("F", bound=Callable[..., Any])


def self_service(view: F) -> F:
    """Only tabs bound to a kiosk or to their own home terminal (never a counter or till)."""

    @terminal_required()
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        terminal = current_terminal()
        if terminal is None or terminal.kind not in TerminalKind.SELF_SERVICE:
            return jsonify(error={"code": "wrong_terminal"}), 403
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _locale() -> str:
    return str(get_locale() or "ja")


def _flow_error(exc: CardFlowError) -> ResponseReturnValue:
    if exc.final:
        clear_flow()
    return jsonify(error=error_body(exc, _locale())), 409 if exc.final else 400


@bp.errorhandler(CardFlowError)
def _on_flow_error(exc: CardFlowError) -> ResponseReturnValue:
    return _flow_error(exc)


@bp.errorhandler(IdentityError)
def _on_identity_error(exc: IdentityError) -> ResponseReturnValue:
    body = {"code": exc.code.value, "explanation": exc.message(_locale()), "final": False}
    return jsonify(error=body), 400


def _terminal_id() -> int:
    terminal = current_terminal()
    assert terminal is not None  # noqa: S101 - terminal_required
    return terminal.id


def _idle_seconds() -> float:
    """A public kiosk forgets the citizen after a minute; their own reader at home later."""
    terminal = current_terminal()
    if terminal is not None and terminal.kind == TerminalKind.HOME:
        return float(current_app.config.get("HOME_IDLE_SECONDS", 600))
    return float(current_app.config.get("KIOSK_IDLE_SECONDS", 60))


def _active(*, mykey: bool = False) -> dict[str, Any]:
    """The flow state, if its card is still on the reader and the kiosk was not idle."""
    state = load_flow()
    if "epoch" not in state or (mykey and "mykey" not in state):
        raise CardFlowError(FlowCode.SESSION_ENDED, "no card session")
    if time.time() - float(state.get("seen", 0)) > _idle_seconds():
        raise CardFlowError(FlowCode.SESSION_ENDED, "idle")
    if not cardflow.card_present(get_bus(current_app), _terminal_id(), int(state["epoch"])):
        raise CardFlowError(FlowCode.CARD_REMOVED)
    state["seen"] = time.time()
    save_flow(state)
    return state


def _verifier() -> Any:
    from ..cardflow import verifier_for

    return verifier_for(current_app)


def _provider_name(p: Provider) -> str:
    return p.name_en if _locale() == "en" and p.name_en else p.name_ja


def _me(state: dict[str, Any]) -> dict[str, Any]:
    s = db.session()
    mykey = s.get(MyKeyID, state["mykey"])
    if mykey is None:
        clear_flow()
        raise CardFlowError(FlowCode.SESSION_ENDED, "MyKey ID gone")
    linked = identity.links(s, mykey.id)
    linked_ids = {p.id for _, p in linked}
    providers = s.query(Provider).order_by(Provider.kind, Provider.id).all()
    en = _locale() == "en"
    return {
        "mykey_id": mykey.id,
        "created": bool(state.get("created")),
        "can_reroll": bool(state.get("created")) and identity.can_reroll(s, mykey),
        "rerolls_left": identity.MAX_REROLLS - mykey.rerolls_used,
        "links": [
            {"provider_id": p.id, "provider": _provider_name(p), "number": row.customer_number}
            for row, p in linked
        ],
        "providers": [
            {
                "id": p.id,
                "name": _provider_name(p),
                "kind": p.kind,
                "terms": (p.terms_en if en and p.terms_en else p.terms_ja),
                "terms_version": p.terms_version,
                "linked": p.id in linked_ids,
                "digits_only": p.number_rule.get("charset", "digits") == "digits",
            }
            for p in providers
        ],
    }


@bp.post("/card")
@self_service
def card() -> ResponseReturnValue:
    """Read the card on the reader and check its certificate (no PIN yet)."""
    clear_flow()
    read = cardflow.read_card(get_bus(current_app), _verifier(), _terminal_id())
    save_flow({"epoch": read.epoch, "reader": read.reader, "seen": time.time()})
    return jsonify(ok=True, next="pin")


@bp.post("/pin/begin")
@self_service
def pin_begin() -> ResponseReturnValue:
    """Tries left and the sealing key: what the PIN pad needs."""
    state = _active()
    prompt = cardflow.begin_pin(
        get_bus(current_app),
        _verifier(),
        _terminal_id(),
        PURPOSE,
        s=db.session(),
        epoch=int(state["epoch"]),
    )
    state["prompt"] = prompt.state()
    save_flow(state)
    return jsonify(prompt.public())


@bp.post("/pin/complete")
@self_service
def pin_complete() -> ResponseReturnValue:
    """The sealed PIN: VERIFY and signature on the card, then open or create the MyKey ID."""
    state = _active()
    prompt = state.pop("prompt", None)
    save_flow(state)  # one prompt, one try: the nonce is burnt either way
    if not prompt:
        raise CardFlowError(FlowCode.FLOW_EXPIRED, "no PIN prompt")
    body = request.get_json(silent=True) or {}
    sealed = body.get("sealed")
    if not isinstance(sealed, dict):
        raise CardFlowError(FlowCode.PIN_FORMAT, "no sealed PIN")
    verified = cardflow.complete_pin(
        get_bus(current_app),
        _verifier(),
        _terminal_id(),
        prompt,
        sealed,
        bool(body.get("confirm_last_try")),
    )
    mykey, created = identity.open_or_create(db.session(), verified.card_key, verified.not_after)
    state.update(mykey=mykey.id, created=created)
    save_flow(state)
    return jsonify(_me(state))


@bp.get("/me")
@self_service
def me() -> ResponseReturnValue:
    """The MyKey ID of this card session, its links and the providers to link."""
    return jsonify(_me(_active(mykey=True)))


@bp.get("/points")
@self_service
def points() -> ResponseReturnValue:
    """The authenticated citizen's points: balances, lots with expiry, own transfers."""
    state = _active(mykey=True)
    return jsonify(municipalities=my_points(db.session(), state["mykey"]))


@bp.post("/reroll")
@self_service
def reroll() -> ResponseReturnValue:
    """Swap the new MyKey ID for a fresh one (a few times, before any link)."""
    state = _active(mykey=True)
    if not state.get("created"):
        raise CardFlowError(FlowCode.SESSION_ENDED, "only a new ID is re-rolled")
    new = identity.reroll(db.session(), state["mykey"])
    state["mykey"] = new.id
    save_flow(state)
    return jsonify(_me(state))


@bp.post("/links")
@self_service
def add_link() -> ResponseReturnValue:
    """Link a customer number of a provider (terms accepted, number checked)."""
    state = _active(mykey=True)
    body = request.get_json(silent=True) or {}
    provider = db.session().get(Provider, body.get("provider_id"))
    if provider is None:
        return jsonify(error={"code": "unknown_provider", "final": False}), 404
    terms = body.get("terms_version") if body.get("accepted") else None
    identity.link(
        db.session(),
        state["mykey"],
        provider,
        str(body.get("customer_number") or ""),
        terms if isinstance(terms, int) else None,
    )
    state["created"] = False  # linked: no more re-rolls
    save_flow(state)
    return jsonify(_me(state)), 201


@bp.post("/links/<int:provider_id>/delete")
@self_service
def remove_link(provider_id: int) -> ResponseReturnValue:
    """Unlink the MyKey ID's number at a provider."""
    state = _active(mykey=True)
    identity.unlink(db.session(), state["mykey"], provider_id)
    return jsonify(_me(state))


@bp.post("/end")
@self_service
def end() -> ResponseReturnValue:
    """End the citizen's session (done, idle, or card removed)."""
    clear_flow()
    return jsonify(ok=True)
