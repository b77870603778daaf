"""Typed points errors: an enum code, an HTTP status, and a message in Japanese and English.

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
    NOT_ACCEPTED = "not_accepted"
    INACTIVE = "inactive"
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


MESSAGES: dict[Code, tuple[str, str]] = {
    Code.INVALID_INPUT: ("入力が正しくありません。", "The input is not valid."),
    Code.INVALID_AMOUNT: (
        "数量は正の整数で指定してください。",
        "The amount must be a positive whole number within the limit.",
    ),
    Code.INVALID_MYKEY_ID: ("マイキーIDの形式が正しくありません。", "The MyKey ID is malformed."),
    Code.INVALID_REFERENCE: (
        "参照番号の形式が正しくありません。",
        "The reference must be 1-64 printable ASCII characters.",
    ),
    Code.UNKNOWN_FIELD: ("不明な項目があります。", "The request has a field we do not know."),
    Code.MISSING_FIELD: ("必須項目がありません。", "A required field is missing."),
    Code.INVALID_CSV: (
        "CSVファイルに誤りがあります。どの行も反映していません。",
        "The CSV file has errors; no row was applied.",
    ),
    Code.UNAUTHORIZED: ("認証に失敗しました。", "The credentials are missing or not valid."),
    Code.FORBIDDEN: ("この操作は許可されていません。", "This operation is not allowed."),
    Code.UNKNOWN_MUNICIPALITY: ("自治体が見つかりません。", "No such municipality."),
    Code.UNKNOWN_CITIZEN: ("マイキーIDが見つかりません。", "No such MyKey ID."),
    Code.UNKNOWN_PROGRAM: ("ポイント事業が見つかりません。", "No such grant program."),
    Code.UNKNOWN_MERCHANT: ("加盟店が見つかりません。", "No such merchant."),
    Code.UNKNOWN_PARTNER: ("協力企業が見つかりません。", "No such partner."),
    Code.UNKNOWN_TRANSFER: ("取引が見つかりません。", "No such transfer."),
    Code.UNKNOWN_CONVERSION: ("ポイント移行が見つかりません。", "No such conversion."),
    Code.NOT_ACCEPTED: (
        "この自治体では受け付けていません。",
        "The municipality does not accept this.",
    ),
    Code.INACTIVE: ("現在は利用できません。", "This is not active."),
    Code.INSUFFICIENT_POINTS: ("ポイントが不足しています。", "Not enough points."),
    Code.BUDGET_EXHAUSTED: ("事業の予算を超えます。", "The program's budget would be exceeded."),
    Code.CAP_REACHED: (
        "お一人あたりの上限に達しています。",
        "The per-citizen cap of the program is reached.",
    ),
    Code.BELOW_MINIMUM_UNIT: (
        "移行単位の倍数で指定してください。",
        "The amount must be a positive multiple of the minimum unit.",
    ),
    Code.REFUND_WINDOW_CLOSED: (
        "返金できる期間を過ぎています。",
        "The refund window for this payment has closed.",
    ),
    Code.REFUND_EXCEEDS_SPENT: (
        "返金額が利用額を超えます。",
        "The refund would exceed what was spent.",
    ),
    Code.NOT_REVERSIBLE: ("この取引は取り消せません。", "This transfer cannot be reversed."),
    Code.IDEMPOTENCY_CONFLICT: (
        "同じキーで異なる内容の依頼がありました。",
        "This idempotency key was already used with a different request.",
    ),
    Code.ALREADY_RESOLVED: (
        "既に確定または取消済みです。",
        "The held transfer was already posted or voided.",
    ),
    Code.TOO_MANY_KEYS: (
        "有効なAPIキーは2つまでです。",
        "At most two API keys may be active; revoke one first.",
    ),
    Code.BUSY: ("混み合っています。再度お試しください。", "Busy; retry with the same key."),
}


class PointsError(Exception):
    """Base of points errors: `code`, `status` (HTTP), and an optional `detail`."""

    status = 400

    def __init__(self, code: Code, detail: str = "", *, line: int | None = None) -> None:
        self.code = code
        self.detail = detail
        self.line = line  # a CSV line number, when the error is about one row
        super().__init__(f"{code.value}: {detail}" if detail else code.value)

    @property
    def message_ja(self) -> str:
        """The message for a Japanese page."""
        return MESSAGES[self.code][0]

    @property
    def message_en(self) -> str:
        """The message for an English page or an API client."""
        return MESSAGES[self.code][1]

    def as_dict(self) -> dict[str, object]:
        """The JSON body of an API error."""
        body: dict[str, object] = {
            "code": self.code.value,
            "message": self.message_en,
            "message_ja": self.message_ja,
        }
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
