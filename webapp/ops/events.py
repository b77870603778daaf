"""What an operator watches: one structured log line (and a metric) per thing that matters.

    card_refused        a card the platform would not accept (untrusted, revoked, expired,
                        wrong PIN, locked...): code, reason (the verifier's, when it has one),
                        terminal, provider, purpose
    link_refused        a service number that could not be linked: code, terminal, provider
    payment_refused     a till payment that did not go through: code, terminal, provider
    bridge_connected    a bridge authenticated on this worker: bridge, terminal, provider
    bridge_disconnected and left it: bridge, terminal, provider, seconds connected, why

Never a person: no MyKey ID, no service number, no name, no certificate, no card key.
The fields are codes, kinds and ids of terminals, providers and bridges (devices), and
every call site passes them by name so that nothing else can slip in. Each line goes to
the logger `ichimai.events` at INFO, as JSON (ops/logs.py); each event also counts in
ops/metrics.py.
"""

from __future__ import annotations

import logging
from typing import Any

from . import metrics
from .logs import EVENT_FIELDS

log = logging.getLogger("ichimai.events")
log.setLevel(logging.INFO)

# The codes that are a refused card (the rest of a flow's outcomes are the page's
# business: no card yet, a busy flow, a tab that went away...). webapp/cardflow/errors.py.
CARD_REFUSALS = frozenset(
    {
        "not_my_number_card",
        "card_unreadable",
        "untrusted",
        "expired",
        "not_yet_valid",
        "revoked",
        "crl_unavailable",
        "wrong_pin",
        "pin_last_try",
        "pin_retap",
        "pin_locked",
        "pin_format",
        "auth_failed",
    }
)
PIN_CODES = frozenset({"wrong_pin", "pin_last_try", "pin_retap", "pin_locked", "pin_format"})


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """One line for `event` with `fields` (codes and ids only: see the module doc)."""
    body = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    log.log(level, event, extra={EVENT_FIELDS: body})


def card_refused(
    code: str,
    *,
    terminal: int | None,
    provider: int | None,
    purpose: str | None = None,
    reason: str | None = None,
) -> None:
    """A card was refused with `code` at `terminal` (of `provider`)."""
    metrics.REFUSALS.labels(what="card", code=code).inc()
    if code in PIN_CODES:
        metrics.PIN_OUTCOMES.labels(outcome=code).inc()
    emit(
        "card_refused",
        logging.WARNING,
        code=code,
        reason=reason,
        terminal=terminal,
        provider=provider,
        purpose=purpose,
    )


def pin_accepted() -> None:
    """A PIN was right (and the card signed)."""
    metrics.PIN_OUTCOMES.labels(outcome="ok").inc()


def link_refused(code: str, *, terminal: int | None, provider: int | None) -> None:
    """A service number could not be linked (taken, malformed, not confirmed...)."""
    metrics.REFUSALS.labels(what="link", code=code).inc()
    emit("link_refused", code=code, terminal=terminal, provider=provider)


def payment_refused(code: str, *, terminal: int | None, provider: int | None) -> None:
    """A till payment did not go through (insufficient points, over a cap...)."""
    metrics.REFUSALS.labels(what="payment", code=code).inc()
    emit("payment_refused", code=code, terminal=terminal, provider=provider)


def tap(kind: str) -> None:
    """A card was put on a reader of a terminal of `kind`."""
    metrics.TAPS.labels(kind=kind or "unknown").inc()


def bridge_connected(bridge: str, *, terminal: int, provider: int | None) -> None:
    """A bridge authenticated on this worker."""
    metrics.BRIDGES_ONLINE.inc()
    metrics.BRIDGE_CONNECTIONS.labels(event="connect").inc()
    emit("bridge_connected", bridge=bridge, terminal=terminal, provider=provider)


def bridge_disconnected(
    bridge: str, *, terminal: int, provider: int | None, seconds: float, why: str
) -> None:
    """A bridge's connection on this worker ended (`why`: closed, silent, going_away...)."""
    metrics.BRIDGES_ONLINE.dec()
    metrics.BRIDGE_CONNECTIONS.labels(event="disconnect").inc()
    emit(
        "bridge_disconnected",
        bridge=bridge,
        terminal=terminal,
        provider=provider,
        seconds=round(seconds, 1),
        why=why,
    )
