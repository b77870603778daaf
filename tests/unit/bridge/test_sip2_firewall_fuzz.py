"""Property: whatever the platform sends, only the allowlist reaches the library system.

Arbitrary text and bytes, valid messages of every SIP2 type (requests and responses,
with any fixed and identified fields, checksummed or not), and mutations of allowed
ones go to a bridge session as `sip2` commands, with or without a sealed password. What
the library system receives is checked frame by frame: first through a fake socket (the
real connector and codec, the peer replaying the expected reply type), then through a
real TCP connection to the demo library system. Every frame must be the bridge's own 93
(the configured login) or a 99, a 63 with a blank summary and no item range, a 35, or a
23 where allowed; AO and AC always the configured ones; AD only ever the sealed one.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
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
    SIP2CodecError,
    SIPMessage,
    decode_message,
    encode_message,
)
from pysip2.models import MESSAGE_SPECS_BY_ID

from bridge import wire
from bridge.seal import generate_device_key
from bridge.session import BridgeSession
from bridge.sip2.codec import Sip2Codec
from bridge.sip2.connector import Sip2Connection
from tests.fixtures.sip2 import seal_patron_password, sealed_config
from webapp import library_demo
from webapp.library_demo import DemoLibrary
from webapp.terminals import sip2 as frames

BRIDGE = "bridge-fuzz"
KEY = generate_device_key()
SEALED_PASSWORD = "sealed-pw-1"
INSTITUTION = library_demo.INSTITUTION
ALLOWED = (SCStatusRequest, PatronInformationRequest, EndPatronSessionRequest, PatronStatusRequest)

# -- strategies ----------------------------------------------------------------------

_FIXED_ALPHABET = "YNU012 +*-9"
_DATE = st.builds(
    lambda d, t: d + "    " + t,
    st.from_regex(r"\A20[0-9]{6}\Z"),
    st.from_regex(r"\A[0-9]{6}\Z"),
)


def _fixed(width: int) -> st.SearchStrategy[str]:
    if width == 18:
        return _DATE
    if width == 4:
        return st.sampled_from(["2.00", "1.00", "0001", "    ", "1234"])
    if width in (10, 14, 16):
        return st.text(alphabet="Y N", min_size=width, max_size=width)
    return st.text(alphabet=_FIXED_ALPHABET + "0123456789", min_size=width, max_size=width)


_VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="|\r\x00"),
    max_size=12,
)


@st.composite
def any_message(draw: st.DrawFn) -> str:
    """Any SIP2 message pysip2 can encode, of every type, as UTF-8 text (no CR)."""
    spec = draw(st.sampled_from(sorted(MESSAGE_SPECS_BY_ID.values(), key=lambda s: s.command_id)))
    values: dict[str, Any] = {}
    for f in spec.fields:
        if f.field_id is None:
            values[f.name] = draw(_fixed(f.width or 1))
        elif f.repeatable:
            values[f.name] = tuple(draw(st.lists(_VALUE, max_size=2)))
        elif f.required or draw(st.booleans()):
            values[f.name] = draw(st.sampled_from(["", "Y", "N", "0000000011"]) | _VALUE)
    try:
        message = spec.struct_type(**values)
        checksum = draw(st.booleans())
        raw = encode_message(
            message,
            sequence_number=draw(st.integers(0, 9)) if checksum else None,
            checksum=checksum,
            encoding="utf-8",
        )
    except (SIP2CodecError, TypeError):
        return spec.command_id + draw(_VALUE)
    return raw.decode("utf-8").rstrip("\r")


def _allowed_frames() -> list[str]:
    return [
        frames.sc_status(),
        frames.patron_information("0000000011"),
        frames.patron_status("0000000022"),
        frames.end_patron_session("0000000033"),
    ]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """An allowed request with a few characters changed, cut, or inserted."""
    text = draw(st.sampled_from(_allowed_frames()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        piece = draw(
            st.sampled_from(["AD", "AC", "AO", "BP", "BQ", "Y", "|", "AYAZ", "1", "9", "\r", "AA"])
            | _VALUE
        )
        cut = draw(st.integers(0, 3))
        text = text[:at] + piece + text[at + cut :]
    return text


@st.composite
def allowed_variants(draw: st.DrawFn) -> str:
    """Allowed requests with any patron id, language, date; AO, AC, AD empty or absent."""
    patron = draw(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="|\r\x00"),
            max_size=20,
        )
    )
    common = {
        "transaction_date": draw(_DATE),
        "institution_id": draw(st.sampled_from(["", INSTITUTION])),
        "patron_identifier": patron,
    }
    language = draw(st.from_regex(r"\A[0-9]{3}\Z"))
    kind = draw(st.sampled_from(ALLOWED))
    empty = st.sampled_from([None, ""])
    if kind is SCStatusRequest:
        message: SIPMessage = SCStatusRequest(
            status_code=draw(st.sampled_from("012")), max_print_width="000", protocol_version="2.00"
        )
    elif kind is PatronInformationRequest:
        message = PatronInformationRequest(
            language=language,
            summary=" " * 10,
            terminal_password=draw(empty),
            patron_password=draw(empty),
            **common,
        )
    elif kind is PatronStatusRequest:
        message = PatronStatusRequest(
            language=language, terminal_password="", patron_password="", **common
        )
    else:
        message = EndPatronSessionRequest(terminal_password=draw(empty), **common)
    try:
        return encode_message(message, encoding="utf-8").decode("utf-8").rstrip("\r")
    except SIP2CodecError:
        return "99"


REQUESTS = (
    allowed_variants()
    | allowed_variants()
    | st.text(max_size=120)
    | st.binary(max_size=120).map(lambda b: b.decode("latin-1"))
    | any_message()
    | mutated()
    | st.sampled_from(_allowed_frames())
    # JSON can carry a lone surrogate ("\\ud800"): it is refused, never sent or raised
    | st.sampled_from([f.replace("0000000011", "\ud800") for f in _allowed_frames()])
)

# -- what the library system may receive ---------------------------------------------


def check_received(raw: bytes, *, charset: str = "utf-8", patron_status: bool = True) -> None:
    """One frame the library system received is allowed (or fail the test)."""
    codec = Sip2Codec(charset, checksums=False)
    message = codec.decode(raw).message
    assert isinstance(message, (LoginRequest, *ALLOWED)), type(message).__name__
    if isinstance(message, LoginRequest):
        assert message.login_user_id == library_demo.LOGIN_USER
        assert message.login_password == library_demo.LOGIN_PASSWORD
        return
    if isinstance(message, PatronStatusRequest):
        assert patron_status
    if isinstance(message, SCStatusRequest):
        return
    assert message.institution_id == INSTITUTION
    assert message.terminal_password == library_demo.TERMINAL_PASSWORD
    if isinstance(message, PatronInformationRequest):
        assert message.summary == " " * 10
        assert message.start_item is None and message.end_item is None
    if isinstance(message, EndPatronSessionRequest):
        assert message.patron_password is None
    else:
        assert message.patron_password in (None, "", SEALED_PASSWORD)


# -- a fake peer behind a fake socket ------------------------------------------------


def _reply_to(message: SIPMessage) -> SIPMessage:
    date = "20250101    120000"
    if isinstance(message, LoginRequest):
        return LoginResponse(ok="1")
    if isinstance(message, SCStatusRequest):
        return ACSStatusResponse(
            online_status="Y", checkin_ok="Y", checkout_ok="Y", acs_renewal_policy="Y",
            status_update_ok="Y", offline_ok="Y", timeout_period="030", retries_allowed="003",
            date_time_sync=date, protocol_version="2.00", institution_id=INSTITUTION,
            supported_messages="Y" * 16,
        )  # fmt: skip
    if isinstance(message, PatronInformationRequest):
        return PatronInformationResponse(
            patron_status=" " * 14, language="000", transaction_date=date,
            hold_items_count="0000", overdue_items_count="0000", charged_items_count="0000",
            fine_items_count="0000", recall_items_count="0000", unavailable_holds_count="0000",
            institution_id=INSTITUTION, patron_identifier=message.patron_identifier,
            personal_name="名前", valid_patron="Y", valid_patron_password="N",
        )  # fmt: skip
    if isinstance(message, PatronStatusRequest):
        return PatronStatusResponse(
            patron_status=" " * 14, language="000", transaction_date=date,
            institution_id=INSTITUTION, patron_identifier=message.patron_identifier,
            personal_name="名前", valid_patron="Y", valid_patron_password="N",
        )  # fmt: skip
    assert isinstance(message, EndPatronSessionRequest)
    return EndSessionResponse(
        end_session="Y", transaction_date=date, institution_id=INSTITUTION,
        patron_identifier=message.patron_identifier,
    )  # fmt: skip


class FakeSocket:
    """Records every byte sent; answers each frame with a reply of the expected type."""

    received: ClassVar[list[bytes]] = []

    def __init__(self) -> None:
        self.pending = b""

    def sendall(self, data: bytes) -> None:
        FakeSocket.received.append(data)
        message = decode_message(data, encoding="utf-8").message
        self.pending += encode_message(_reply_to(message), encoding="utf-8")

    def recv(self, size: int) -> bytes:
        out, self.pending = self.pending[:size], self.pending[size:]
        return out

    def close(self) -> None:
        pass


class FakePeerConnection(Sip2Connection):
    """The real connector and codec, over a FakeSocket."""

    def _connect(self) -> socket.socket:
        return FakeSocket()  # type: ignore[return-value]


@pytest.fixture(scope="module")
def fake_session() -> Iterator[BridgeSession]:
    session = BridgeSession(BRIDGE, KEY)
    config = sealed_config(KEY.public_key(), BRIDGE, port=6001)
    session.sip2.connection = FakePeerConnection(
        config,
        login_password=library_demo.LOGIN_PASSWORD,
        terminal_password=library_demo.TERMINAL_PASSWORD,
    )
    session.sip2.throttle.limit = session.sip2.throttle.overall = 10**9
    yield session


def _command(text: str, sealed: bool) -> wire.Sip2Command:
    command_id = wire.new_id()
    envelope = None
    if sealed:
        envelope = seal_patron_password(KEY.public_key(), BRIDGE, command_id, SEALED_PASSWORD)
    return wire.Sip2Command(text, sealed=envelope, id=command_id)


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=REQUESTS, sealed=st.booleans())
def test_only_the_allowlist_reaches_the_peer(
    fake_session: BridgeSession, text: str, sealed: bool
) -> None:
    FakeSocket.received = []
    answer = fake_session.handle(_command(text, sealed))
    assert isinstance(answer, wire.Sip2Result | wire.Error)
    if isinstance(answer, wire.Error):
        assert answer.code.startswith("sip2_") or answer.code == "refused"
    event("sent" if FakeSocket.received else f"not sent: {getattr(answer, 'code', '')}")
    for raw in FakeSocket.received:
        check_received(raw)
    if FakeSocket.received:
        assert isinstance(answer, wire.Sip2Result)
        wire.encode(answer)  # the projection always fits a frame


@settings(max_examples=600)
@given(text=any_message())
def test_no_message_outside_the_allowlist_is_admitted(text: str) -> None:
    """The same property on the firewall alone, over every message type."""
    from bridge.sip2 import Sip2Error
    from bridge.sip2.firewall import admit

    try:
        admitted = admit(text, institution_id=INSTITUTION, patron_status=False)
    except Sip2Error as exc:
        assert exc.code.value == "sip2_refused"
        return
    assert type(admitted.message) in ALLOWED[:3]


# -- through real TCP to the demo library system -------------------------------------


@pytest.fixture(scope="module")
def tcp_session() -> Iterator[tuple[BridgeSession, DemoLibrary]]:
    with DemoLibrary(charset="shift_jis", checksums=True, patron_status=False) as library:
        session = BridgeSession(BRIDGE, KEY)
        session.sip2.throttle.limit = session.sip2.throttle.overall = 10**9
        config = sealed_config(
            KEY.public_key(),
            BRIDGE,
            port=library.port,
            charset="shift_jis",
            checksums=True,
            patron_status=False,
        )
        assert isinstance(session.handle(wire.Sip2ConfigureCommand(config)), wire.Sip2Result)
        yield session, library
        session.sip2.close()


@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=REQUESTS, sealed=st.booleans())
def test_only_the_allowlist_reaches_the_library_system(
    tcp_session: tuple[BridgeSession, DemoLibrary], text: str, sealed: bool
) -> None:
    session, library = tcp_session
    answer = session.handle(_command(text, sealed))
    assert isinstance(answer, wire.Sip2Result | wire.Error)
    for frame in library.received:
        check_received(frame.raw, charset="shift_jis", patron_status=False)
    assert set(library.commands()) <= {"93", "99", "63", "35"}
