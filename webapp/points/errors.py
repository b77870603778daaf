"""Typed points errors: an enum code and an HTTP status (webapp.catalogue words the code).

Whose fault it is shows in the class: `InvalidInput`, `Unauthorized`, `NotFound` are the
caller's; `Refused` is a domain rule saying no (budget, balance, cap, window); `Conflict`
is a replay with another payload or a state that has moved on. None of them changes
anything: every service raises before commit and rolls back.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Stable error codes for API clients and pages."""

    INVALID_INPUT = "invalid_input"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_MYKEY_ID = "invalid_mykey_id"
    INVALID_REFERENCE = "invalid_reference"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    INVALID_CSV = "invalid_csv"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    UNKNOWN_MUNICIPALITY = "unknown_municipality"
    UNKNOWN_CITIZEN = "unknown_citizen"
    UNKNOWN_PROGRAM = "unknown_program"
    UNKNOWN_MERCHANT = "unknown_merchant"
    UNKNOWN_PARTNER = "unknown_partner"
    UNKNOWN_TRANSFER = "unknown_transfer"
    UNKNOWN_CONVERSION = "unknown_conversion"
    UNKNOWN_CAUSE = "unknown_cause"
    CAUSE_CLOSED = "cause_closed"
    NOT_ACCEPTED = "not_accepted"
    INACTIVE = "inactive"
    NOT_RUNNING = "not_running"
    INVALID_CODE = "invalid_code"
    DUPLICATE_CODE = "duplicate_code"
    INVALID_DATES = "invalid_dates"
    CAPS_ONLY_RAISED = "caps_only_raised"
    INVALID_BONUS_PROGRAM = "invalid_bonus_program"
    UNKNOWN_TILL = "unknown_till"
    UNKNOWN_STAFF = "unknown_staff"
    PLATFORM_PARTNER = "platform_partner"
    INSUFFICIENT_POINTS = "insufficient_points"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CAP_REACHED = "cap_reached"
    BELOW_MINIMUM_UNIT = "below_minimum_unit"
    REFUND_WINDOW_CLOSED = "refund_window_closed"
    REFUND_EXCEEDS_SPENT = "refund_exceeds_spent"
    NOT_REVERSIBLE = "not_reversible"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    ALREADY_RESOLVED = "already_resolved"
    TOO_MANY_KEYS = "too_many_keys"
    BUSY = "busy"
    UNKNOWN_CHECKOUT = "unknown_checkout"
    CHECKOUT_EXPIRED = "checkout_expired"
    CHECKOUT_CANCELLED = "checkout_cancelled"
    CHECKOUT_PAID = "checkout_paid"
    CHECKOUT_NOT_PAID = "checkout_not_paid"
    INVALID_RETURN_URL = "invalid_return_url"
    INVALID_ORIGIN = "invalid_origin"
    NOT_A_SHOP = "not_a_shop"


class PointsError(Exception):
    """Base of points errors: `code`, `status` (HTTP), and an optional `detail`."""

    status = 400

    def __init__(self, code: Code, detail: str = "", *, line: int | None = None) -> None:
        self.code = code
        self.detail = detail
        self.line = line  # a CSV line number, when the error is about one row
        super().__init__(f"{code.value}: {detail}" if detail else code.value)

    def as_dict(self) -> dict[str, object]:
        """The JSON body of an API error (the web layer adds the words)."""
        body: dict[str, object] = {"code": self.code.value}
        if self.detail:
            body["detail"] = self.detail
        if self.line is not None:
            body["line"] = self.line
        return body


class InvalidInput(PointsError):
    """The caller sent something malformed (the caller's fault)."""

    status = 400


class Unauthorized(PointsError):
    """Missing or wrong credentials."""

    status = 401


class Forbidden(PointsError):
    """Authenticated, but not allowed to do this."""

    status = 403


class NotFound(PointsError):
    """A municipality, citizen, program, merchant or transfer that does not exist."""

    status = 404


class Conflict(PointsError):
    """A replay with another payload, or a held transfer that was already resolved."""

    status = 409


class Refused(PointsError):
    """A domain rule says no: balance, budget, cap, minimum unit, refund window."""

    status = 422


class Busy(PointsError):
    """The database stayed contended through every retry; the same key may be retried."""

    status = 503


class CsvRejected(InvalidInput):
    """A grant file with errors; `errors` lists (line number, error) and nothing was applied."""

    def __init__(self, errors: list[PointsError]) -> None:
        super().__init__(Code.INVALID_CSV, f"{len(errors)} error(s)")
        self.errors = errors

    def as_dict(self) -> dict[str, object]:
        """The JSON body, with each row's error and its line number."""
        body = super().as_dict()
        body["errors"] = [e.as_dict() for e in self.errors]
        return body
