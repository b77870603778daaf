"""The terminals domain's errors: each carries a stable `code` for the JSON API."""

from __future__ import annotations


class TerminalsError(Exception):
    """Base class; `code` is what an API client switches on, `status` the HTTP status."""

    code = "terminals_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UnknownTerminal(TerminalsError):
    """No terminal with that id."""

    code = "unknown_terminal"
    status = 404


class UnknownBridge(TerminalsError):
    """No bridge with that id."""

    code = "unknown_bridge"
    status = 404


class InvalidRequest(TerminalsError):
    """A field is missing or malformed."""

    code = "invalid_request"


class PairingError(TerminalsError):
    """A pairing code was refused: `invalid_code`, `expired_code` or `used_code`."""

    code = "invalid_code"
    status = 403


class BridgeAuthError(TerminalsError):
    """A bridge failed the challenge: `unauthorized` (unknown, bad signature) or `revoked`."""

    code = "unauthorized"
    status = 401
