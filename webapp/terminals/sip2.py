"""SIP2 requests as the platform sends them to a bridge: text the bridge's firewall admits.

The bridge fills in the institution id (AO) and terminal password (AC) from its own
settings and the patron's password (AD) only from a sealed envelope, and adds its own
sequence number and checksum; these build the rest with pysip2's codec (UTF-8 text, no
CR). Hand the text to `TerminalLink.sip2_exchange`.

    link.sip2_exchange(terminal_id, patron_information(number), sealed=env, command_id=cid)
"""

from __future__ import annotations

from datetime import datetime

from pysip2 import (
    EndPatronSessionRequest,
    PatronInformationRequest,
    PatronStatusRequest,
    SCStatusRequest,
    SIPMessage,
    encode_message,
)

LANGUAGE_UNKNOWN = "000"  # SIP2's language code for "unknown" (the system's default)


def _text(message: SIPMessage) -> str:
    return encode_message(message, encoding="utf-8").decode("utf-8")[:-1]


def transaction_date(now: datetime | None = None) -> str:
    """SIP2's date: YYYYMMDD, four blanks (local time), HHMMSS."""
    now = now or datetime.now()
    return now.strftime("%Y%m%d") + "    " + now.strftime("%H%M%S")


def sc_status() -> str:
    """99 SC Status (protocol 2.00)."""
    return _text(SCStatusRequest(status_code="0", max_print_width="000", protocol_version="2.00"))


def patron_information(patron_id: str, *, language: str = LANGUAGE_UNKNOWN) -> str:
    """63 Patron Information with a blank summary (no item lists)."""
    return _text(
        PatronInformationRequest(
            language=language,
            transaction_date=transaction_date(),
            summary=" " * 10,
            institution_id="",
            patron_identifier=patron_id,
        )
    )


def patron_status(patron_id: str, *, language: str = LANGUAGE_UNKNOWN) -> str:
    """23 Patron Status (not every system has it: FOLIO's edge-sip2 does not)."""
    return _text(
        PatronStatusRequest(
            language=language,
            transaction_date=transaction_date(),
            institution_id="",
            patron_identifier=patron_id,
            terminal_password="",
            patron_password="",
        )
    )


def end_patron_session(patron_id: str) -> str:
    """35 End Patron Session."""
    return _text(
        EndPatronSessionRequest(
            transaction_date=transaction_date(), institution_id="", patron_identifier=patron_id
        )
    )
