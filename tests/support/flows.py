"""The card flow's JSON API (/flow/...) as a test drives it: begin, seal the PIN the way
the browser does (bridge.seal, the same scheme as static/js/seal.js), complete."""

from __future__ import annotations

from typing import Any

from bridge.seal import SealContext, seal_pin

PIN = "1234"


def sealed_for(prompt: dict[str, Any], pin: str = PIN) -> dict[str, Any]:
    """The PIN sealed to the prompt's bridge for its command id."""
    return seal_pin(
        prompt["seal_public_key"], pin, SealContext(prompt["bridge_id"], prompt["command_id"])
    )


def begin(client: Any, purpose: str, **params: Any) -> Any:
    """POST /flow/begin."""
    return client.post("/flow/begin", json={"purpose": purpose, **params})


def complete(client: Any, prompt: dict[str, Any], pin: str = PIN, *, confirm: bool = False) -> Any:
    """POST /flow/pin/complete with the PIN sealed for `prompt`."""
    return client.post(
        "/flow/pin/complete",
        json={
            "sealed": sealed_for(prompt, pin),
            "command_id": prompt["command_id"],
            "confirm_last_try": confirm,
        },
    )


def card_and_pin(
    client: Any, purpose: str, pin: str = PIN, *, confirm: bool = False, **params: Any
) -> Any:
    """Begin a PIN purpose for the card on the reader and complete it; the last response."""
    started = begin(client, purpose, **params)
    assert started.status_code == 200, started.get_json()
    return complete(client, started.get_json()["pin"], pin, confirm=confirm)


def error_code(response: Any) -> str:
    """The code of an error response."""
    return str(response.get_json()["error"]["code"])
