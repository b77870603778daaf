"""The SIP2 firewall: only the allowlist reaches the library system, in canonical form.

Like the APDU firewall (bridge/firewall.py), it holds whatever the platform sends:

- the request is decoded with pysip2's codec; anything that does not decode is refused;
- allowed: 99 SC Status, 63 Patron Information with the summary all blank (no item
  lists, no BP/BQ), 35 End Patron Session, and 23 Patron Status when the settings say
  the system has it. 93 Login is the bridge's own (with the sealed login password), so
  a 93 from the platform is refused like checkout, checkin, renew, fee paid, block
  patron, hold, item information and everything else;
- no AY/AZ from the platform (the bridge numbers and checksums its own frames), no
  terminal password (AC: the bridge's settings), no patron password (AD: only from a
  sealed envelope, and only on 63 and 23), AO empty or the configured institution;
- what is sent is rebuilt field by field from the decoded model (`complete`), with the
  bridge's AO, AC and AD, so nothing the codec would have ignored (unknown fields,
  duplicates of optional ones) can ride along.

Refusals carry a short reason (never a value from the frame) and are logged with the
command code only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pysip2 import (
    EndPatronSessionRequest,
    PatronInformationRequest,
    PatronStatusRequest,
    SCStatusRequest,
    SIP2Error,
    SIPMessage,
    decode_message,
)

from bridge.sip2_wire import MAX_SIP2_FRAME, Sip2Code

from . import Sip2Error

log = logging.getLogger(__name__)

ALLOWED: dict[type[SIPMessage], str] = {
    SCStatusRequest: "99",
    PatronInformationRequest: "63",
    EndPatronSessionRequest: "35",
    PatronStatusRequest: "23",
}
TAKES_PASSWORD = (PatronInformationRequest, PatronStatusRequest)
BLANK_SUMMARY = " " * 10
MAX_PATRON_ID = 64  # library numbers are 8-14 characters; SIP2 allows 255 bytes

PatronRequest = PatronInformationRequest | EndPatronSessionRequest | PatronStatusRequest
Request = SCStatusRequest | PatronRequest


class Sip2Refused(Sip2Error):
    """The SIP2 firewall refused a request; nothing was sent."""

    def __init__(self, reason: str, command: str = "??") -> None:
        super().__init__(Sip2Code.REFUSED, reason)
        log.warning("SIP2 request refused: %s (command %s)", reason, command)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A request the firewall let through, before the bridge fills in its own fields."""

    message: Request
    command: str
    patron_id: str | None


def admit(text: str, *, institution_id: str, patron_status: bool, sealed: bool = False) -> Admitted:
    """Decode and check a request from the platform; Sip2Refused if it may not pass.

    `patron_status`: the system has 23; `sealed`: a sealed patron password comes with it.
    """
    if not isinstance(text, str) or not 2 <= len(text) <= MAX_SIP2_FRAME:
        raise Sip2Refused("not SIP2 text of a bounded size")
    command = text[:2] if text[:2].isascii() and text[:2].isdigit() else "??"
    if text.endswith("\r"):
        text = text[:-1]
    if any(ch in text for ch in "\r\n\x00"):
        raise Sip2Refused("control characters in the frame", command)
    try:
        decoded = decode_message(text.encode("utf-8") + b"\r", encoding="utf-8")
    except (SIP2Error, UnicodeError, ValueError):
        raise Sip2Refused("malformed or unknown SIP2 message", command) from None
    if decoded.checksum is not None or decoded.sequence_number is not None:
        raise Sip2Refused("the bridge adds its own sequence and checksum", command)
    message = decoded.message
    code = ALLOWED.get(type(message))
    if code is None:
        raise Sip2Refused("this SIP2 message is not allowed", command)
    if code == "23" and not patron_status:
        raise Sip2Refused("the library system has no 23 Patron Status", code)
    if sealed and not isinstance(message, TAKES_PASSWORD):
        raise Sip2Refused("a patron password only goes with 63 or 23", code)
    if isinstance(message, SCStatusRequest):
        return Admitted(message, code, None)
    assert isinstance(message, PatronRequest)  # noqa: S101 - the allowlist's other three
    _check_patron_fields(message, code, institution_id)
    return Admitted(message, code, message.patron_identifier)


def _check_patron_fields(message: PatronRequest, code: str, institution_id: str) -> None:
    patron = message.patron_identifier
    if not 1 <= len(patron) <= MAX_PATRON_ID or not patron.isprintable():
        raise Sip2Refused(f"the patron id must be 1-{MAX_PATRON_ID} printable characters", code)
    if message.institution_id not in ("", institution_id):
        raise Sip2Refused("the institution id is the bridge's own", code)
    if message.terminal_password:
        raise Sip2Refused("the terminal password is the bridge's own", code)
    if message.patron_password:
        raise Sip2Refused("a patron password only comes sealed", code)
    if isinstance(message, PatronInformationRequest):
        if message.summary != BLANK_SUMMARY:
            raise Sip2Refused("63 with an item summary (only the blank summary is allowed)", code)
        if message.start_item is not None or message.end_item is not None:
            raise Sip2Refused("63 with an item range", code)


def complete(
    admitted: Admitted,
    *,
    institution_id: str,
    terminal_password: str,
    patron_password: str | None,
) -> Request:
    """The request to send, rebuilt field by field with the bridge's AO, AC and AD."""
    m = admitted.message
    if isinstance(m, SCStatusRequest):
        return SCStatusRequest(
            status_code=m.status_code,
            max_print_width=m.max_print_width,
            protocol_version=m.protocol_version,
        )
    if isinstance(m, PatronInformationRequest):
        return PatronInformationRequest(
            language=m.language,
            transaction_date=m.transaction_date,
            summary=BLANK_SUMMARY,
            institution_id=institution_id,
            patron_identifier=m.patron_identifier,
            terminal_password=terminal_password,
            patron_password=patron_password,
        )
    if isinstance(m, PatronStatusRequest):
        return PatronStatusRequest(
            language=m.language,
            transaction_date=m.transaction_date,
            institution_id=institution_id,
            patron_identifier=m.patron_identifier,
            terminal_password=terminal_password,
            patron_password=patron_password or "",
        )
    return EndPatronSessionRequest(
        transaction_date=m.transaction_date,
        institution_id=institution_id,
        patron_identifier=m.patron_identifier,
        terminal_password=terminal_password,
    )
