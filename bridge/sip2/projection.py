"""What goes back to the platform: a projection of the library system's reply.

Only what the platform needs to decide a link (docs/bridge.md, "SIP2", and the table in
bridge/sip2_wire.py): valid patron, valid password and the patron-status flags of 64
and 24; online, supported messages, institution, library name and version of 98; ok of
94; end session of 36. Names, fees, items, addresses and screen messages stay on the
bridge, and not even there for longer than the reply.
"""

from __future__ import annotations

from pysip2 import (
    ACSStatusResponse,
    EndPatronSessionRequest,
    EndSessionResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    SCStatusRequest,
    SIPMessage,
)

from bridge.sip2_wire import (
    PATRON_FLAGS,
    SUPPORTED_MESSAGES,
    Projection,
    Sip2EndSession,
    Sip2Login,
    Sip2Patron,
    Sip2Status,
)

# The reply each request must get.
EXPECTED: dict[type[SIPMessage], type[SIPMessage]] = {
    SCStatusRequest: ACSStatusResponse,
    LoginRequest: LoginResponse,
    PatronInformationRequest: PatronInformationResponse,
    PatronStatusRequest: PatronStatusResponse,
    EndPatronSessionRequest: EndSessionResponse,
}


def _yn(value: str | None) -> bool | None:
    return None if value is None else value == "Y"


def _printable(value: str, limit: int = 255) -> str:
    return "".join(ch for ch in value if ch.isprintable() and ch != "|")[:limit]


def project(reply: SIPMessage) -> Projection:
    """The projection of a 98, 64, 24, 94 or 36; ValueError for any other message."""
    if isinstance(reply, PatronInformationResponse | PatronStatusResponse):
        return Sip2Patron(
            valid_patron=_yn(reply.valid_patron),
            valid_password=_yn(reply.valid_patron_password),
            flags=tuple(
                n for n, f in zip(PATRON_FLAGS, reply.patron_status, strict=True) if f == "Y"
            ),
        )
    if isinstance(reply, ACSStatusResponse):
        bx = reply.supported_messages
        return Sip2Status(
            online=reply.online_status == "Y",
            supported=tuple(c for c, f in zip(SUPPORTED_MESSAGES, bx, strict=True) if f == "Y"),
            institution_id=_printable(reply.institution_id),
            library_name=None if reply.library_name is None else _printable(reply.library_name),
            protocol_version=reply.protocol_version,
        )
    if isinstance(reply, LoginResponse):
        return Sip2Login(reply.ok == "1")
    if isinstance(reply, EndSessionResponse):
        return Sip2EndSession(reply.end_session == "Y")
    raise ValueError(f"no projection for {type(reply).__name__}")
