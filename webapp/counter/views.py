"""The librarian's tab: /counter (pick a terminal, the counter page) and its JSON steps.

Thin: each step asks `webapp.cardflow` for the card (read, or PIN + signature), hands the
verified card to `counter.services`, and words the outcome with `counter.messages`.
The PIN never passes here in the clear: the tab seals it to the bridge (static/js/seal.js).
"""

from __future__ import annotations

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
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import select

from .. import db
from ..bus import get_bus
from ..cardflow import CardFlowError, verifier_for
from ..cardflow import services as cardflow
from ..cardflow.binding import (
    bind_counter,
    clear_flow,
    current_terminal,
    load_flow,
    save_flow,
    staff_may_use,
    terminal_required,
    unbind,
)
from ..providers.models import Provider
from ..staff.auth import current_staff, staff_required
from ..staff.models import Role
from ..terminals.models import Terminal, TerminalKind
from ..terminals.remote import RemoteTransport
from . import services
from .messages import counter_message, tone_for
from .services import PURPOSE_LINK, PURPOSE_LOOKUP, CounterError

bp = Blueprint("counter", __name__, url_prefix="/counter")
KEYBOARD_TIMEOUT = 5.0


def _terminal() -> Terminal:
    terminal = current_terminal()
    assert terminal is not None  # noqa: S101 - terminal_required
    return terminal


def _provider(terminal: Terminal) -> Provider:
    provider = db.session().get(Provider, terminal.provider_id)
    assert provider is not None  # noqa: S101 - foreign key
    return provider


def _locale() -> str:
    return str(get_locale() or "ja")


def _failure(code: str, *, tries_left: int | None = None, final: bool = True) -> dict[str, Any]:
    message = counter_message(code, _locale())
    tone = tone_for(code)
    return {
        "ok": False,
        "code": code,
        "title": message.title,
        "explanation": message.explanation,
        "action": message.action,
        "tone": tone.name,
        "icon": tone.icon,
        "tries_left": tries_left,
        "final": final,
        "offer_link": code == "no_link",
    }


def _flow_failure(exc: CardFlowError) -> ResponseReturnValue:
    if exc.final:
        clear_flow()
    return jsonify(_failure(exc.code.value, tries_left=exc.tries_left, final=exc.final))


def _result(presentation: services.Presentation, *, linked: bool = False) -> ResponseReturnValue:
    clear_flow()
    body: dict[str, Any] = {"ok": True, "result": presentation.as_json(), "linked": linked}
    if presentation.problem:
        body["notice"] = _failure(presentation.problem, final=False)
    return jsonify(body)


def _keyboard(terminal: Terminal) -> RemoteTransport:
    return RemoteTransport(get_bus(current_app), terminal.id, timeout=KEYBOARD_TIMEOUT)


def _epoch(body: dict[str, Any]) -> int | None:
    epoch = body.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def _prompt(terminal: Terminal, purpose: str, epoch: int | None, **flow: Any) -> dict[str, Any]:
    prompt = cardflow.begin_pin(
        get_bus(current_app),
        verifier_for(current_app),
        terminal.id,
        purpose,
        s=db.session(),
        epoch=epoch,
    )
    save_flow({"prompt": prompt.state(), "purpose": purpose, **flow})
    return {"ok": True, "pin": prompt.public(), "purpose": purpose}


# -- pages ------------------------------------------------------------------------------


@bp.get("/")
@staff_required()
def index() -> ResponseReturnValue:
    """The counter page when a counter terminal is open here; else the terminal picker."""
    terminal = current_terminal()
    if terminal is not None and terminal.kind == TerminalKind.COUNTER:
        provider = _provider(terminal)
        return render_template(
            "counter/counter.html",
            terminal=terminal,
            provider=provider,
            settings=services.settings_of(provider),
            offline=_failure("bridge_offline"),
            removed=_failure("card_removed"),
        )
    user = current_staff()
    assert user is not None  # noqa: S101 - staff_required
    stmt = select(Terminal).where(Terminal.kind == TerminalKind.COUNTER).order_by(Terminal.name)
    if user.role != Role.PLATFORM_ADMIN:
        stmt = stmt.where(Terminal.provider_id == user.provider_id)
    return render_template("counter/pick.html", terminals=list(db.session().scalars(stmt)))


@bp.post("/open/<int:terminal_id>")
@staff_required()
def open_terminal(terminal_id: int) -> ResponseReturnValue:
    """Open one of the staff member's counter terminals in this tab."""
    terminal = db.session().get(Terminal, terminal_id)
    if terminal is None or terminal.kind != TerminalKind.COUNTER or not staff_may_use(terminal):
        abort(404)
    bind_counter(terminal)
    return redirect(url_for("counter.index"))


@bp.post("/close")
@staff_required()
def close_terminal() -> ResponseReturnValue:
    """Leave the terminal (back to the picker)."""
    unbind()
    return redirect(url_for("counter.index"))


# -- JSON steps -------------------------------------------------------------------------


@bp.post("/api/lookup")
@terminal_required(TerminalKind.COUNTER)
def api_lookup() -> ResponseReturnValue:
    """A card was tapped: its number (no-PIN mode) or the PIN prompt (PIN mode)."""
    terminal = _terminal()
    provider = _provider(terminal)
    body = request.get_json(silent=True) or {}
    epoch = _epoch(body)
    try:
        if services.pin_required(provider):
            return jsonify(_prompt(terminal, PURPOSE_LOOKUP, epoch))
        read = cardflow.read_card(
            get_bus(current_app), verifier_for(current_app), terminal.id, epoch=epoch
        )
        presentation = services.lookup(
            db.session(), provider, read.card, keyboard=_keyboard(terminal)
        )
    except CardFlowError as exc:
        return _flow_failure(exc)
    except CounterError as exc:
        return jsonify(_failure(exc.code))
    return _result(presentation)


@bp.post("/api/link")
@terminal_required(TerminalKind.COUNTER)
def api_link() -> ResponseReturnValue:
    """Staff-assisted linking, step 1: the library card number; then the citizen's PIN."""
    terminal = _terminal()
    provider = _provider(terminal)
    body = request.get_json(silent=True) or {}
    if body.get("terms_accepted") is not True:
        return jsonify(_failure("terms_not_accepted", final=False))
    try:
        number = services.check_number(provider, str(body.get("number") or ""))
    except Exception as exc:  # NumberInvalid: say why in the action line
        failure = _failure("number_invalid", final=False)
        message = getattr(exc, "message", None)
        if callable(message):
            failure["explanation"] = message(_locale())
        return jsonify(failure)
    try:
        return jsonify(
            _prompt(
                terminal,
                PURPOSE_LINK,
                _epoch(body),
                number=number,
                terms_version=provider.terms_version,
            )
        )
    except CardFlowError as exc:
        return _flow_failure(exc)


@bp.post("/api/pin")
@terminal_required(TerminalKind.COUNTER)
def api_pin() -> ResponseReturnValue:
    """The sealed PIN for the pending step (lookup or link); the number on success."""
    terminal = _terminal()
    provider = _provider(terminal)
    flow = load_flow()
    body = request.get_json(silent=True) or {}
    sealed = body.get("sealed")
    if not flow.get("prompt") or not isinstance(sealed, dict):
        return jsonify(_failure("flow_expired"))
    try:
        card = cardflow.complete_pin(
            get_bus(current_app),
            verifier_for(current_app),
            terminal.id,
            flow["prompt"],
            sealed,
            confirm_last_try=body.get("confirm_last_try") is True,
        )
    except CardFlowError as exc:
        if not exc.final and exc.code.value in ("wrong_pin", "pin_last_try"):
            # A new prompt (fresh nonce and command id) for the next attempt, same step.
            return _retry(terminal, flow, exc)
        clear_flow()
        return jsonify(_failure(exc.code.value, tries_left=exc.tries_left, final=exc.final))
    s = db.session()
    try:
        if flow.get("purpose") == PURPOSE_LINK:
            services.staff_link(s, provider, card, flow["number"], flow.get("terms_version"))
            presentation = services.lookup(s, provider, card, keyboard=_keyboard(terminal))
            return _result(presentation, linked=True)
        presentation = services.lookup(s, provider, card, keyboard=_keyboard(terminal))
    except CounterError as exc:
        clear_flow()
        return jsonify(_failure(exc.code))
    return _result(presentation)


def _retry(terminal: Terminal, flow: dict[str, Any], exc: CardFlowError) -> ResponseReturnValue:
    prompt_state = flow["prompt"]
    try:
        again = _prompt(
            terminal,
            str(flow.get("purpose")),
            prompt_state.get("epoch"),
            **{k: v for k, v in flow.items() if k not in ("prompt", "purpose")},
        )
    except CardFlowError as new_exc:
        return _flow_failure(new_exc)
    failure = _failure(exc.code.value, tries_left=exc.tries_left, final=False)
    failure["pin"] = again["pin"]
    return jsonify(failure)


@bp.post("/api/cancel")
@terminal_required(TerminalKind.COUNTER)
def api_cancel() -> ResponseReturnValue:
    """Forget the pending step (card removed, librarian cancelled)."""
    clear_flow()
    return jsonify({"ok": True})
